// How conversations become training text. A model that ships a chat template (its
// chat_template.jinja, or "chat_template" in tokenizer_config.json) is trained in its own
// format; data.chat_template names another template file; a model without one gets
// bigbatch's own format (instruct_dataset.h). The bytes that take a loss are the assistant
// turns: the template's {% generation %} blocks where it has them, otherwise found by
// rendering the conversation up to each assistant turn, with and without the generation
// prompt (the same way for every template).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/jinja.h"
#include "data/tokenizer.h"

namespace bb {

enum class TrainOn { Assistant, All };

// "assistant" or "all"; ConfigError naming data.train_on otherwise.
TrainOn parse_train_on(const std::string& text);

struct ChatFormat {
  std::shared_ptr<const ChatTemplate> tmpl;  // null: bigbatch's own format
  std::string source;                        // what the run's header says was used
};

// The chat format of a tokenizer's model folder (dir; empty for the byte tokenizer), or the
// template file `override_path` when it is not empty. Throws FormatError naming the file for
// one that cannot be read or does not parse (with its line).
ChatFormat load_chat_format(const std::string& dir, const std::string& override_path);

struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> trained;  // byte ranges [begin, end) that take a loss
};

// Renders a conversation (`line` holds "messages"; its other fields are the template's
// variables, such as "tools") with the tokenizer's bos_token and eos_token. Throws
// FormatError naming `where` when the template rejects the messages (raise_exception), there
// is no assistant turn to learn, or the assistant turns cannot be found by rendering.
RenderedChat render_chat_for_training(const ChatTemplate& tmpl, const nlohmann::ordered_json& line,
                                      const SpecialIds& special, TrainOn train_on, const std::string& where);

// The text that prompts the model for the assistant's next turn: the template with
// add_generation_prompt, or bigbatch's own lines ending "<|assistant|>\n".
std::string render_chat_prompt(const ChatFormat& format, const nlohmann::ordered_json& messages,
                               const SpecialIds& special);

// Token ids of rendered text and, for each, whether it takes a loss: a token is trained when it
// lies in a trained range. BOS goes first when the tokenizer adds it and the text
// does not start with it already.
struct TrainedIds {
  std::vector<int64_t> ids;
  std::vector<uint8_t> trained;
};
TrainedIds tokenize_rendered(const RenderedChat& chat, const Tokenizer& tok);

}  // namespace bb
