// Renders a chat template file with a JSON context through @huggingface/jinja, the Hugging
// Face JavaScript implementation of Jinja for chat templates, and writes the text to stdout
// byte for byte: node render.js TEMPLATE.jinja CONTEXT.json. An error goes to stderr with exit
// code 1. Used by tests/data/test_jinja.cpp; scripts/setup_chat_template_node.sh installs the
// package.
const fs = require('fs');
const path = require('path');
const { Template } = require(path.join(__dirname, 'node', 'node_modules', '@huggingface', 'jinja'));

const [templatePath, contextPath] = process.argv.slice(2);
if (!templatePath || !contextPath) {
  process.stderr.write('usage: node render.js TEMPLATE.jinja CONTEXT.json\n');
  process.exit(2);
}
try {
  const template = new Template(fs.readFileSync(templatePath, 'utf-8'));
  const context = JSON.parse(fs.readFileSync(contextPath, 'utf-8'));
  process.stdout.write(template.render(context));
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
