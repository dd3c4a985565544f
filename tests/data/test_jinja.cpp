// The chat-template renderer (data/jinja): the language, feature by feature, with outputs
// written here (Python Jinja's, as Transformers renders templates); the real templates of
// seven model families (tests/fixtures/chat_templates) over several conversations, byte for
// byte against @huggingface/jinja; and its errors. scripts/setup_chat_template_node.sh
// installs the npm package; a missing one fails the comparison tests.
#include <gtest/gtest.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/jinja.h"
#include "text_files.h"

namespace bb {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const std::string kTemplates = std::string(BIGBATCH_FIXTURES) + "/chat_templates";
const std::string kNodeDir = std::string(BIGBATCH_SOURCE_DIR) + "/tests/chat_template";

std::string render(const std::string& text, const std::string& context = "{}") {
  return render_chat_template(text, Json::parse(context), "t.jinja");
}

// The message of the FormatError that rendering throws (empty, and a failure, if none).
std::string error_of(const std::string& text, const std::string& context = "{}") {
  try {
    render(text, context);
  } catch (const FormatError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for the template: " << text;
  return "";
}

// ---- the language ----

TEST(JinjaText, WhitespaceControlAndComments) {
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("a \n {%- if true -%} \n b {%- endif %}"), "ab");
  EXPECT_EQ(render("a{# a comment #}b{#- strips -#}  c"), "abc");
  EXPECT_EQ(render("x {{ '{{' }} {# {{ not a tag }} #}y"), "x {{ y");
  EXPECT_EQ(render("{{ {'a': {'b': 1}}['a']['b'] }}"), "1");  // '}}' inside brackets does not end the tag
}

TEST(JinjaText, TrimAndLstripBlocksAsTransformersSetsThem) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before one;
  // neither touches {{ }}. One trailing newline of the template is dropped.
  EXPECT_EQ(render("{% for x in [1, 2] %}\n    {% if x %}\n  <{{ x }}>\n    {% endif %}\n{% endfor %}\n"), "  <1>\n  <2>\n");
  EXPECT_EQ(render("  {{ 'kept' }}\n"), "  kept");
  EXPECT_EQ(render("a\n  {# note #}\nb"), "a\nb");
  EXPECT_EQ(render("a\n  {%+ if true %}b{% endif +%}\nc"), "a\n  b\nc");  // '+' turns both off
  EXPECT_EQ(render("line\r\n{% if true %}\r\nx\r\n{% endif %}"), "line\nx\n");
}

TEST(JinjaExpressions, LiteralsPrintAsPython) {
  EXPECT_EQ(render("{{ true }} {{ False }} {{ none }} {{ undefined_name }}|"), "True False None |");
  EXPECT_EQ(render("{{ 42 }} {{ 1.0 }} {{ 0.1 }} {{ 2.5e3 }} {{ 1e20 }} {{ 1_000 }}"), "42 1.0 0.1 2500.0 1e+20 1000");
  EXPECT_EQ(render("{{ [1, 'a', none, true, [2.0]] }}"), "[1, 'a', None, True, [2.0]]");
  EXPECT_EQ(render("{{ {'k': 'v', 'n': 1} }} {{ {} }} {{ [] }}"), "{'k': 'v', 'n': 1} {} []");
  EXPECT_EQ(render(R"({{ "it's" }} {{ ["it's"] }} {{ 'tab\there' }} {{ '\u00e9\x41' }} {{ 'a' 'b' }})"),
            "it's [\"it's\"] tab\there éA ab");
}

TEST(JinjaExpressions, ArithmeticFollowsPython) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
            "3 -4 1 2 3.5 2.0 1024 0.5");
  EXPECT_EQ(render("{{ 1 + 2 * 3 - 4 }} {{ (1 + 2) * 3 }} {{ 1 + 2.5 }} {{ -(3) }} {{ true + 1 }}"), "3 9 3.5 -3 2");
  EXPECT_EQ(render("{{ 'ab' * 3 }} {{ [1] + [2] }} {{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none ~ nothing }}"), "ababab [1, 2] ab a1None");
  EXPECT_EQ(render("{{ 3 ** 0 }} {{ (-2) ** 3 }} {{ 0 ** 5 }} {{ 2 ** 62 }} {{ 9223372036854775807 - 1 }}"),
            "1 -8 0 4611686018427387904 9223372036854775806");
}

TEST(JinjaExpressions, LogicComparisonsAndMembership) {
  EXPECT_EQ(render("{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ [] and 1 }} {{ not '' }} {{ not 1 }}"), "x b [] True False");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }} {{ 'b' >= 'a' }}"),
            "True False True True True True");
  EXPECT_EQ(render("{{ 'ell' in 'hello' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'x' in nothing }}"),
            "True True True True False");
  EXPECT_EQ(render("{{ 'y' if 1 else 'n' }} {{ 'y' if 0 else 'n' }} [{{ 'y' if 0 }}] {{ 'a' if 0 else 'b' if 1 else 'c' }}"),
            "y n [] b");
}

TEST(JinjaExpressions, AttributesSubscriptsAndSlices) {
  const std::string ctx = R"({"s": "héllo", "l": [10, 20, 30, 40], "d": {"a": {"b": [5, 6]}, "items": 1}})";
  EXPECT_EQ(render("{{ s[1:] }} {{ s[::-1] }} {{ s[0] }} {{ s[-1] }} {{ s[1:3] }}", ctx), "éllo olléh h o él");
  EXPECT_EQ(render("{{ l[1:] }} {{ l[:-1] }} {{ l[::2] }} {{ l[::-1] }} {{ l[-2] }} {{ l[10] }}|{{ l[5:] }}", ctx),
            "[20, 30, 40] [10, 20, 30] [10, 30] [40, 30, 20, 10] 30 |[]");
  EXPECT_EQ(render("{{ d.a.b[1] }} {{ d['a']['b'].0 }} {{ d.missing }}|{{ d['items'] }} {{ l.0 }}", ctx), "6 5 |1 10");
  EXPECT_EQ(render("{{ d.missing is defined }} {{ d.a.missing is undefined }}", ctx), "False True");
}

TEST(JinjaExpressions, Tests) {
  const std::string ctx = R"({"n": null, "s": "x", "i": 3, "f": 1.5, "l": [1], "d": {"k": 1}, "t": true})";
  EXPECT_EQ(render("{{ s is defined }} {{ nope is defined }} {{ nope is undefined }} {{ n is none }} {{ s is none }}", ctx),
            "True False True True False");
  EXPECT_EQ(render("{{ s is string }} {{ i is number }} {{ f is number }} {{ s is number }} {{ i is integer }} {{ f is float }}", ctx),
            "True True True False True True");
  EXPECT_EQ(render("{{ l is iterable }} {{ s is iterable }} {{ i is iterable }} {{ d is mapping }} {{ l is mapping }}", ctx),
            "True True False True False");
  EXPECT_EQ(render("{{ l is sequence }} {{ d is sequence }} {{ i is sequence }} {{ t is true }} {{ t is false }} {{ 1 is true }}", ctx),
            "True True False True False False");
  EXPECT_EQ(render("{{ i is odd }} {{ i is even }} {{ 4 is even }} {{ i is equalto 3 }} {{ i is eq(4) }} {{ 9 is divisibleby 3 }}", ctx),
            "True False True True False True");
  EXPECT_EQ(render("{{ s is not none }} {{ n is not none }} {{ not s is none }} {{ s is lower }} {{ 'AB' is upper }}", ctx),
            "True False True True True");
}

TEST(JinjaFilters, StringsAndSequences) {
  EXPECT_EQ(render("[{{ '  a b \n' | trim }}] [{{ 'xxaxx' | trim('x') }}] {{ 'aBc' | upper }} {{ 'aBc' | lower }}"),
            "[a b] [a] ABC abc");
  EXPECT_EQ(render("{{ 'hELLO wORLD' | capitalize }} {{ 'hello big-world (x)' | title }} {{ 'a-b' | replace('-', '+') }}"),
            "Hello world Hello Big-World (X) a+b");
  EXPECT_EQ(render("{{ 'héllo' | length }} {{ [1, 2] | length }} {{ {'a': 1} | count }} {{ nothing | length }}"), "5 2 1 0");
  EXPECT_EQ(render("{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'abc' | first }} {{ [1, 2] | join(', ') }} {{ 'abc' | join('-') }}"),
            "3 2 a 1, 2 a-b-c");
  EXPECT_EQ(render("{{ [1, 2] | reverse | list }} {{ 'abc' | reverse }} {{ 'ab' | list }} {{ {'x': 1, 'y': 2} | list }}"),
            "[2, 1] cba ['a', 'b'] ['x', 'y']");
  EXPECT_EQ(render("{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ [3, 1] | sort(reverse=true) }} {{ ['a', 'A', 'b', 'a'] | unique | list }}"),
            "[1, 2, 3] ['A', 'b', 'c'] [3, 1] ['a', 'b']");
  EXPECT_EQ(render("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent('> ', blank=true) }}"),
            "a\n  b\n\n  c|  a\n  b|a\n> \n> b");
}

TEST(JinjaFilters, DefaultsAndConversions) {
  EXPECT_EQ(render("{{ nothing | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ none | d('x') }} {{ 0 | d('x', boolean=true) }}"),
            "d  d None x");
  EXPECT_EQ(render("{{ '42' | int }} {{ '3.9' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ true | int }}"),
            "42 3 0 7 3 1");
  EXPECT_EQ(render("{{ '2.5' | float }} {{ 3 | float }} {{ 'x' | float }} {{ 42 | string }} {{ none | string }} {{ [1] | string }}"),
            "2.5 3.0 0.0 42 None [1]");
  EXPECT_EQ(render("{{ -3 | abs }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 'x' | safe }}"), "3 2.57 2.0 4.0 x");
}

TEST(JinjaFilters, TojsonAsJsonDumps) {
  const std::string ctx = R"({"v": {"b": 1, "a": [true, null, 1.5, "é\"\\\n\u0001"], "e": {}, "l": []}})";
  EXPECT_EQ(render("{{ v | tojson }}", ctx), R"({"b": 1, "a": [true, null, 1.5, "é\"\\\n\u0001"], "e": {}, "l": []})");
  EXPECT_EQ(render("{{ v.a[:2] | tojson(indent=2) }}", ctx), "[\n  true,\n  null\n]");
  EXPECT_EQ(render("{{ v | tojson(indent=1) }}", ctx),
            "{\n \"b\": 1,\n \"a\": [\n  true,\n  null,\n  1.5,\n  \"é\\\"\\\\\\n\\u0001\"\n ],\n \"e\": {},\n \"l\": []\n}");
  EXPECT_EQ(render("{{ v.e | tojson }} {{ 'é' | tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}", ctx),
            R"({} "\u00e9" {"a": 2, "b": 1})");
  EXPECT_EQ(render("{{ {'a': [1, 2]} | tojson(separators=(',', ':')) }} {{ 'x' | tojson }} {{ 3 | tojson }}"), R"({"a":[1,2]} "x" 3)");
}

TEST(JinjaFilters, MapSelectAndItems) {
  const std::string ctx = R"({"ms": [{"role": "system", "content": "S"}, {"role": "user", "content": "U", "x": 1},
                                     {"role": "user", "content": "V"}], "d": {"k": "v", "n": 2}})";
  EXPECT_EQ(render("{{ ms | map(attribute='role') | join(',') }} {{ ms | map(attribute='x', default=0) | list }}", ctx),
            "system,user,user [0, 1, 0]");
  EXPECT_EQ(render("{{ ['a ', ' b'] | map('trim') | join }} {{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3] | reject('equalto', 2) | list }}", ctx),
            "ab [1, 3] [1, 3]");
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join }} "
                   "{{ ms | rejectattr('x', 'defined') | list | length }} {{ ms | selectattr('x') | list | length }} {{ [0, 1, ''] | select | list }}",
                   ctx),
            "UV 2 1 [1]");
  EXPECT_EQ(render("{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %} {{ (d | dictsort | last)[1] }}", ctx), "k=v;n=2; 2");
}

TEST(JinjaStatements, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}"),
            "1032TrueFalse3 2121FalseFalse3 3210FalseTrue3 ");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}|{% endfor %}"), "<1>2|1<2>3|2<3>|");
  EXPECT_EQ(render("{% for x in [1, 2] %}{{ loop.cycle('odd', 'even') }} {% endfor %}"), "odd even ");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4, 5] if x is odd %}{{ x }}@{{ loop.index }}/{{ loop.length }} {% endfor %}"),
            "1@1/3 3@2/3 5@3/3 ");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %} {% for x in [1] if x > 5 %}x{% else %}none passed{% endfor %}"),
            "empty none passed");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}{% for (k, v) in {'x': 1}.items() %}{{ k }}{{ v }}{% endfor %}"),
            "3 7 x1");
  EXPECT_EQ(render("{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %} {% for c in 'hé' %}[{{ c }}]{% endfor %} {% for x in nothing %}x{% endfor %}"),
            "ba [h][é] ");
  EXPECT_EQ(render("{% for r in [[1, 2], [3]] %}{% for c in r %}{{ loop.index }}{% endfor %}/{{ loop.index }} {% endfor %}"), "12/1 1/2 ");
}

TEST(JinjaStatements, IfElifElse) {
  const std::string t = "{% if x > 2 %}big{% elif x > 0 %}small{% elif x == 0 %}zero{% else %}negative{% endif %}";
  EXPECT_EQ(render(t, R"({"x": 5})"), "big");
  EXPECT_EQ(render(t, R"({"x": 1})"), "small");
  EXPECT_EQ(render(t, R"({"x": 0})"), "zero");
  EXPECT_EQ(render(t, R"({"x": -1})"), "negative");
}

TEST(JinjaStatements, SetScopesAndNamespace) {
  // A set inside a loop lasts one pass (hence namespace); one inside an if does not.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %} {{ x }}"), "23 1");
  EXPECT_EQ(render("{% for i in [1, 2] %}{% if i == 1 %}{% set y = 'a' %}{% endif %}[{{ y }}]{% endfor %}"), "[a][]");
  EXPECT_EQ(render("{% if true %}{% set y = 'in if' %}{% endif %}{{ y }}"), "in if");
  EXPECT_EQ(render("{% set ns = namespace(n=0, found=false) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
                   "{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.found }}"),
            "6 True");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t %}<{{ a }}>{% endset %}{{ t }} {% set u | upper %}x{% endset %}{{ u }}"),
            "12 <1> X");
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages | length }}", R"({"messages": [1, 2, 3]})"), "2");
}

TEST(JinjaStatements, MacrosCallAndFilterBlocks) {
  EXPECT_EQ(render("{% macro tag(name, body='-', close=true) %}<{{ name }}>{{ body }}{% if close %}</{{ name }}>{% endif %}{% endmacro %}"
                   "{{ tag('a') }} {{ tag('b', 'x', close=false) }} {{ tag(body='y', name='c') }}"),
            "<a>-</a> <b>x <c>y</c>");
  EXPECT_EQ(render("{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inside{% endcall %}"), "[inside]");
  EXPECT_EQ(render("{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
                   "{% call(v) each([1, 2]) %}<{{ v }}>{% endcall %}"),
            "<1><2>");
  EXPECT_EQ(render("{% filter upper %}shout {{ 'this' }}{% endfilter %}"), "SHOUT THIS");
}

TEST(JinjaStatements, GenerationBlocksRecordTheirSpans) {
  const ChatTemplate t(
      "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}</s>{% endgeneration %}"
      "{% else %}{{ m.content }}{% endif %}{{ '\\n' }}{% endfor %}",
      "gen.jinja");
  const ChatRender r = t.render(Json::parse(R"({"messages": [{"role": "user", "content": "hi"},
      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}, {"role": "assistant", "content": "ok"}]})"));
  EXPECT_EQ(r.text, "<user>hi\n<assistant>hello</s>\n<user>more\n<assistant>ok</s>\n");
  ASSERT_EQ(r.generation_spans.size(), 2u);
  EXPECT_EQ(r.text.substr(r.generation_spans[0].first, r.generation_spans[0].second - r.generation_spans[0].first), "hello</s>");
  EXPECT_EQ(r.text.substr(r.generation_spans[1].first, r.generation_spans[1].second - r.generation_spans[1].first), "ok</s>");
}

TEST(JinjaMethods, StringAndDictMethods) {
  EXPECT_EQ(render("[{{ '  x  '.strip() }}] [{{ '  x  '.lstrip() }}] [{{ '  x  '.rstrip() }}] [{{ '\nx\n'.strip('\n') }}]"),
            "[x] [x  ] [  x] [x]");
  EXPECT_EQ(render("{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ '<think>x</think>y'.split('</think>')[-1] }}"),
            "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b,c'] y");
  EXPECT_EQ(render("{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'ab'.upper() }} {{ 'AB'.lower() }} {{ 'they are'.title() }}"),
            "True True AB ab They Are");
  EXPECT_EQ(render("{{ 'aaa'.replace('a', 'b', 2) }} {{ '{} and {name}'.format(1, name='x') }} {{ ', '.join(['a', 'b']) }}"),
            "bba 1 and x a, b");
  const std::string ctx = R"({"d": {"b": 1, "a": 2}})";
  EXPECT_EQ(render("{{ d.keys() | list }} {{ d.values() | list }} {% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %} "
                   "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 0) }}",
                   ctx),
            "['b', 'a'] [1, 2] b1a2 2 None 0");
}

TEST(JinjaGlobals, RangeRaiseAndStrftime) {
  EXPECT_EQ(render("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(3, 0, -1) | list }} {{ dict(a=1) }}"),
            "[0, 1, 2] [1, 3, 5] [3, 2, 1] {'a': 1}");
  char year[8];
  const std::time_t now = std::time(nullptr);
  std::strftime(year, sizeof year, "%Y", std::localtime(&now));
  EXPECT_EQ(render("{{ strftime_now('%Y') }}"), year);
  try {
    render("line 1\n{{ raise_exception('Only user and assistant roles are supported!') }}");
    ADD_FAILURE() << "raise_exception did not throw";
  } catch (const ChatTemplateRaised& e) {
    EXPECT_STREQ(e.what(), "chat template t.jinja: line 2: the template raised an exception: Only user and assistant roles are supported!");
  }
}

TEST(JinjaApi, ContextKeyOrderAndTemplateSelection) {
  const std::string t = "{{ d | tojson }}";
  EXPECT_EQ(render_chat_template(t, Json::parse(R"({"d": {"z": 1, "a": 2}})"), "t"), R"({"z": 1, "a": 2})");
  EXPECT_EQ(render_chat_template(t, nlohmann::json::parse(R"({"d": {"z": 1, "a": 2}})"), "t"), R"({"a": 2, "z": 1})");

  const auto config = nlohmann::json::parse(R"({"chat_template": [{"name": "default", "template": "D"},
                                                                   {"name": "tool_use", "template": "T"}]})");
  EXPECT_EQ(select_chat_template(config["chat_template"], "tool_use", "tokenizer_config.json"), "T");
  EXPECT_EQ(select_chat_template(nlohmann::json("plain"), "default", "tokenizer_config.json"), "plain");
  try {
    select_chat_template(config["chat_template"], "rag", "tokenizer_config.json");
    ADD_FAILURE() << "no error for a missing template name";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "tokenizer_config.json: chat_template has no template named 'rag' (it has: default, tool_use)");
  }
}

// ---- errors: one sentence naming the template, the line and the construct ----

TEST(JinjaErrors, UnsupportedAndUnknownConstructs) {
  try {
    ChatTemplate("{{ bos_token }}\n{% for m in messages %}\n{% include 'header.jinja' %}{% endfor %}", "tokenizer_config.json");
    ADD_FAILURE() << "include was accepted";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "chat template tokenizer_config.json: line 3: unsupported statement 'include'");
  }
  EXPECT_EQ(error_of("a\n{{ x | frobnicate }}"), "chat template t.jinja: line 2: unknown filter 'frobnicate'");
  EXPECT_EQ(error_of("{{ x is shiny }}"), "chat template t.jinja: line 1: unknown test 'shiny'");
  EXPECT_EQ(error_of("{% frobnicate %}"), "chat template t.jinja: line 1: unknown statement 'frobnicate'");
  EXPECT_EQ(error_of("\n\n{% for x in xs recursive %}{% endfor %}"), "chat template t.jinja: line 3: unsupported loop modifier 'recursive'");
  EXPECT_EQ(error_of("{% break %}"), "chat template t.jinja: line 1: 'break' outside a for loop");
  EXPECT_EQ(error_of("{{ '%s' % 1 }}"),
            "chat template t.jinja: line 1: string formatting with '%' is not supported; use '~' or format()");
}

TEST(JinjaErrors, UnterminatedConstructs) {
  EXPECT_EQ(error_of("{% for m in messages %}\n{{ m }}\n"),
            "chat template t.jinja: line 1: the 'for' block is never closed (expected '{% endfor %}')");
  EXPECT_EQ(error_of("ok\n{% if x %}\n{% for y in z %}{% endif %}"),
            "chat template t.jinja: line 3: unexpected 'endif' inside the 'for' block opened on line 3");
  EXPECT_EQ(error_of("a\nb {{ x "), "chat template t.jinja: line 2: the expression '{{' is never closed with '}}'");
  EXPECT_EQ(error_of("{% if x\n"), "chat template t.jinja: line 1: the block tag '{%' is never closed with '%}'");
  EXPECT_EQ(error_of("{# note"), "chat template t.jinja: line 1: the comment '{#' is never closed with '#}'");
  EXPECT_EQ(error_of("{{ 'abc }}"), "chat template t.jinja: line 1: a string opened with ' is never closed");
  EXPECT_EQ(error_of("{% endif %}"), "chat template t.jinja: line 1: unexpected 'endif' with no open block");
  EXPECT_EQ(error_of("{{ 1 + }}"), "chat template t.jinja: line 1: expected an expression but found '}}'");
  EXPECT_EQ(error_of("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}"),
            "chat template t.jinja: line 1: the template nests deeper than 200 levels");
  EXPECT_EQ(error_of("{% if x %}{% else %}{% elif y %}{% endif %}"),
            "chat template t.jinja: line 1: unexpected 'elif' inside the 'if' block opened on line 1");
}

TEST(JinjaErrors, RuntimeErrorsNameTheLine) {
  EXPECT_EQ(error_of("x\n\n{{ message.content }}"),
            "chat template t.jinja: line 3: cannot read the attribute 'content' of an undefined value");
  EXPECT_EQ(error_of("{{ messages[0]['role'] }}", R"({"messages": []})"),
            "chat template t.jinja: line 1: cannot read the item ['role'] of an undefined value");
  EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "chat template t.jinja: line 1: '+' cannot combine a string and an integer");
  EXPECT_EQ(error_of("{{ 1 // 0 }}"), "chat template t.jinja: line 1: '//' divides by zero");
  EXPECT_EQ(error_of("{{ 2 ** 63 }}"), "chat template t.jinja: line 1: the integer result of '**' is too large");
  EXPECT_EQ(error_of("{% set x.y = 1 %}"), "chat template t.jinja: line 1: cannot set 'x.y': 'x' is undefined, not a namespace()");
  EXPECT_EQ(error_of("{{ nope() }}"), "chat template t.jinja: line 1: cannot call 'nope': it is an undefined value");
  EXPECT_EQ(error_of("{{ [].append(1) }}"), "chat template t.jinja: line 1: list.append would change a list, which chat templates may not do");
  EXPECT_EQ(error_of("{% for a, b in [[1, 2, 3]] %}{% endfor %}"), "chat template t.jinja: line 1: cannot unpack 3 values into 2 names");
  EXPECT_EQ(error_of("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"), "chat template t.jinja: line 1: macro 'm' takes at most 1 argument, got 2");
  EXPECT_EQ(error_of("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"), "chat template t.jinja: line 1: macro calls nest deeper than 100");
  EXPECT_EQ(error_of("{% macro m() %}{% generation %}x{% endgeneration %}{% endmacro %}{{ m() }}"),
            "chat template t.jinja: line 1: a 'generation' block inside a macro, call, set or filter block cannot mark where its text lands");
}

// ---- the real templates against @huggingface/jinja ----

struct Family {
  const char* file;
  const char* bos;
  const char* eos;
};
const Family kFamilies[] = {
    {"llama3.jinja", "<|begin_of_text|>", "<|eot_id|>"}, {"llama3_2.jinja", "<|begin_of_text|>", "<|eot_id|>"},
    {"qwen2_5.jinja", "", "<|im_end|>"},                 {"mistral.jinja", "<s>", "</s>"},
    {"zephyr.jinja", "<s>", "</s>"},                     {"phi3.jinja", "<s>", "<|endoftext|>"},
    {"gemma.jinja", "<bos>", "<eos>"},
};

struct Conversation {
  const char* name;
  const char* messages;
  bool add_generation_prompt;
  bool tools = false;
};
const char* const kSystem = R"({"role": "system", "content": "You are a helpful assistant."})";
const Conversation kConversations[] = {
    {"system+user, prompt", R"([SYS, {"role": "user", "content": "Hello, how are you?"}])", true},
    {"system+user, no prompt", R"([SYS, {"role": "user", "content": "Hello, how are you?"}])", false},
    {"user only, prompt", R"([{"role": "user", "content": "Hi"}])", true},
    {"multi-turn, prompt",
     R"([{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
         {"role": "user", "content": "And 3+3?"}])",
     true},
    {"multi-turn, no prompt",
     R"([{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
         {"role": "user", "content": "And 3+3?"}])",
     false},
    {"multi-turn ending with the assistant",
     R"([{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
         {"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Red."}])",
     false},
    {"system+multi-turn",
     R"([SYS, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye."}])",
     false},
    {"white space, quotes and Unicode",
     R"([{"role": "user", "content": "  Say \"hi\" in Japanese: 日本語 🎉\n\ttabs, back\\slash  \n"},
         {"role": "assistant", "content": "\n こんにちは {{ not a tag }} {% raw %}\n"},
         {"role": "user", "content": "Thanks!"}])",
     true},
    {"roles out of order", R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])", true},
    {"tools and a tool call",
     R"([SYS, {"role": "user", "content": "Weather in Oslo?"},
         {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function":
             {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}}]},
         {"role": "tool", "content": "{\"temperature\": 3}"}])",
     true, true},
};
const char* const kTools = R"([{"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city, e.g. Oslo"},
    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}])";

Json context_for(const Family& f, const Conversation& c) {
  std::string messages = c.messages;
  for (size_t at; (at = messages.find("SYS")) != std::string::npos;) messages.replace(at, 3, kSystem);
  Json ctx;
  ctx["messages"] = Json::parse(messages);
  ctx["add_generation_prompt"] = c.add_generation_prompt;
  ctx["bos_token"] = f.bos;
  ctx["eos_token"] = f.eos;
  ctx["date_string"] = "26 Jul 2024";  // Llama 3.2 would print today's date otherwise
  if (c.tools) ctx["tools"] = Json::parse(kTools);
  return ctx;
}

class JinjaFixtures : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kNodeDir + "/node/node_modules/@huggingface/jinja/package.json"))
        << "@huggingface/jinja is missing: run scripts/setup_chat_template_node.sh";
  }
};

TEST_F(JinjaFixtures, SevenFamiliesMatchHuggingFaceJinjaByteForByte) {
  const std::string dir = test::make_temp_dir("jinja_ref");
  for (const Family& f : kFamilies) {
    const std::string path = kTemplates + "/" + f.file;
    const std::string text = test::read_text(path);
    ASSERT_FALSE(text.empty()) << path;
    const ChatTemplate tmpl(text, f.file);
    int rendered = 0;
    for (const Conversation& c : kConversations) {
      SCOPED_TRACE(std::string(f.file) + ", " + c.name);
      const Json ctx = context_for(f, c);
      const std::string ctx_path = dir + "/context.json";
      test::write_text(ctx_path, ctx.dump());
      const auto ref = test::run_command("node " + kNodeDir + "/render.js " + path + " " + ctx_path + " 2>" + dir + "/stderr");
      ASSERT_TRUE(ref.code == 0 || ref.code == 1) << "node (scripts/setup.sh installs it) exited with " << ref.code;
      if (ref.code == 0) {
        EXPECT_EQ(tmpl.render(ctx).text, ref.output);
        ++rendered;
      } else {  // the template refused the conversation (raise_exception): so must we, with its words
        const std::string message = test::read_text(dir + "/stderr");
        ASSERT_FALSE(message.empty());
        try {
          tmpl.render(ctx);
          ADD_FAILURE() << "@huggingface/jinja raised \"" << message << "\" but bigbatch rendered";
        } catch (const ChatTemplateRaised& e) {
          EXPECT_NE(std::string(e.what()).find(message.substr(0, message.find('\n'))), std::string::npos) << e.what();
        }
      }
    }
    EXPECT_GE(rendered, 5) << f.file << " rendered too few of the conversations to be a comparison";
  }
}

TEST_F(JinjaFixtures, MistralAlternationCheckRaisesWithLineAndMessage) {
  const std::string text = test::read_text(kTemplates + "/mistral.jinja");
  const ChatTemplate tmpl(text, "mistral.jinja");
  const Json ctx = Json::parse(R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                                  "bos_token": "<s>", "eos_token": "</s>"})");
  try {
    tmpl.render(ctx);
    ADD_FAILURE() << "the alternation check did not raise";
  } catch (const ChatTemplateRaised& e) {
    EXPECT_STREQ(e.what(), "chat template mistral.jinja: line 11: the template raised an exception: After the optional "
                           "system message, conversation roles must alternate user/assistant/user/assistant/...");
  }
}

}  // namespace
}  // namespace bb
