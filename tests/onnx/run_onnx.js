// Runs an ONNX model in onnxruntime (CPU) on one input, for the export equivalence test.
// Usage: node run_onnx.js MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32
// The input and output files are raw little-endian float32; the graph's input is "input"
// and its output "logits". Prints the output's dims.
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, inputFile, dimsText, outputFile] = process.argv.slice(2);
  if (!outputFile) throw new Error('usage: node run_onnx.js MODEL INPUT.f32 N,C,H,W OUTPUT.f32');
  const dims = dimsText.split(',').map(Number);
  const buf = fs.readFileSync(inputFile);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const session = await ort.InferenceSession.create(model);
  const result = await session.run({ input: new ort.Tensor('float32', Float32Array.from(data), dims) });
  const logits = result.logits;
  fs.writeFileSync(outputFile, Buffer.from(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength));
  console.log(logits.dims.join(','));
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
