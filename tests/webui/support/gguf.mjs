// A minimal valid GGUF v3 file, as the model store accepts it: a llama header with the keys
// the store reads and one F32 tensor of `mib` MiB of zeros (big enough that an import shows
// progress).
import fsp from 'node:fs/promises';

const GGUF_UINT32 = 4;
const GGUF_STRING = 8;
const GGML_F32 = 0;
const ALIGNMENT = 32;

function u32(value) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

function u64(value) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

function str(text) {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([u64(bytes.length), bytes]);
}

export function llamaGguf({ name = 'browser-test', mib = 8 } = {}) {
  const embedding = 4096;
  const rows = 64 * mib; // 4096 x 64 F32 values = 1 MiB
  const metadata = [
    [str('general.architecture'), u32(GGUF_STRING), str('llama')],
    [str('general.name'), u32(GGUF_STRING), str(name)],
    [str('llama.block_count'), u32(GGUF_UINT32), u32(1)],
    [str('llama.context_length'), u32(GGUF_UINT32), u32(512)],
    [str('llama.embedding_length'), u32(GGUF_UINT32), u32(embedding)],
    [str('llama.attention.head_count'), u32(GGUF_UINT32), u32(32)],
  ];
  const tensor = [str('token_embd.weight'), u32(2), u64(embedding), u64(rows), u32(GGML_F32), u64(0)];
  const header = Buffer.concat([
    Buffer.from('GGUF'),
    u32(3),
    u64(1), // tensors
    u64(metadata.length),
    ...metadata.flat(),
    ...tensor,
  ]);
  const dataOffset = Math.ceil(header.length / ALIGNMENT) * ALIGNMENT;
  const file = Buffer.alloc(dataOffset + embedding * rows * 4);
  header.copy(file);
  return file;
}

export async function writeLlamaGguf(file, options) {
  await fsp.writeFile(file, llamaGguf(options));
}
