#include "common/modelfile/modelfile.hpp"

#include <gtest/gtest.h>

#include "tests/support/files.hpp"
#include "tests/support/gguf_writer.hpp"

namespace aibox::modelfile {
namespace {

using test::GgufWriter;
using test::kGgmlF16;
using test::kGgmlF32;
using test::kGgmlQ4_0;
using test::kGgmlQ4_K;
using test::kGgmlQ6_K;
using test::kGgmlQ8_0;

template <typename T>
T ok(Result<T> result) {
  if (const auto* error = std::get_if<Error>(&result)) {
    ADD_FAILURE() << error->message;
    return T{};
  }
  return std::move(std::get<T>(result));
}

template <typename T>
std::string errorOf(const Result<T>& result) {
  if (const auto* error = std::get_if<Error>(&result)) {
    EXPECT_FALSE(error->message.empty());
    return error->message;
  }
  ADD_FAILURE() << "expected an error";
  return {};
}

std::vector<std::string> tokens(std::size_t count) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back("tok" + std::to_string(i));
  }
  return out;
}

// A one-layer llama quantised as Q4_K_M: Q4_K and Q6_K matrices, an F32 norm.
GgufWriter tinyLlama() {
  GgufWriter writer;
  writer.string("general.architecture", "llama")
      .string("general.name", "Tiny Llama")
      .u32("general.file_type", 15)
      .u32("llama.block_count", 1)
      .u32("llama.context_length", 4096)
      .u32("llama.embedding_length", 256)
      .u32("llama.attention.head_count", 8)
      .u32("llama.attention.head_count_kv", 2)
      .u32("llama.feed_forward_length", 688)
      .f32("llama.rope.freq_base", 10000.0f)
      .boolean("tokenizer.ggml.add_bos_token", true)
      .strings("tokenizer.ggml.tokens", tokens(100))
      .i32s("tokenizer.ggml.token_type", {1, 3, 3});
  writer.tensor("token_embd.weight", {256, 8}, kGgmlQ4_K)
      .tensor("blk.0.attn_norm.weight", {256}, kGgmlF32)
      .tensor("blk.0.attn_q.weight", {256, 4}, kGgmlQ4_K)
      .tensor("blk.0.ffn_down.weight", {256, 4}, kGgmlQ6_K)
      .tensor("output.weight", {256, 8}, kGgmlQ6_K);
  return writer;
}

// Qwen2-7B's attention sizes on tiny Q8_0, F16 and Q4_0 tensors.
GgufWriter qwen2() {
  GgufWriter writer;
  writer.string("general.architecture", "qwen2")
      .string("general.name", "Qwen2 7B")
      .u32("general.file_type", 7)
      .u32("qwen2.block_count", 28)
      .u32("qwen2.context_length", 32768)
      .u32("qwen2.embedding_length", 3584)
      .u32("qwen2.attention.head_count", 28)
      .u32("qwen2.attention.head_count_kv", 4)
      .u32("qwen2.feed_forward_length", 18944);
  writer.tensor("blk.0.attn_k.weight", {64, 4}, kGgmlQ8_0)
      .tensor("blk.0.attn_k.bias", {64}, kGgmlF16)
      .tensor("blk.0.ffn_up.weight", {32, 2}, kGgmlQ4_0);
  return writer;
}

Result<GgufInfo> parseWhole(const std::string& bytes) {
  return parseGguf(bytes, bytes.size());
}

void putU64(std::string& bytes, std::size_t at, std::uint64_t value) {
  for (std::size_t i = 0; i < 8; ++i) {
    bytes[at + i] = static_cast<char>(value >> (8 * i));
  }
}

TEST(Gguf, ReadsMetadataAndDerivedFields) {
  GgufWriter writer = tinyLlama();
  const std::string bytes = writer.bytes();
  GgufInfo info = ok(parseWhole(bytes));
  EXPECT_EQ(info.version, 3u);
  EXPECT_EQ(info.alignment, 32u);
  EXPECT_EQ(info.dataOffset, writer.dataOffset());
  EXPECT_EQ(info.dataOffset % 32, 0u);
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.name, "Tiny Llama");
  EXPECT_EQ(info.blockCount, 1u);
  EXPECT_EQ(info.contextLength, 4096u);
  EXPECT_EQ(info.embeddingLength, 256u);
  EXPECT_EQ(info.headCount, 8u);
  EXPECT_EQ(info.headCountKv, 2u);
  EXPECT_EQ(info.feedForwardLength, 688u);
  EXPECT_EQ(info.fileType, 15u);
  EXPECT_EQ(info.quantization, "Q4_K_M");
  EXPECT_EQ(info.metadata.size(), 13u);
  EXPECT_DOUBLE_EQ(std::get<double>(info.metadata.at("llama.rope.freq_base")), 10000.0);
  EXPECT_TRUE(std::get<bool>(info.metadata.at("tokenizer.ggml.add_bos_token")));
}

TEST(Gguf, KeepsSmallArraysAndOnlySummarisesLargeOnes) {
  GgufInfo info = ok(parseWhole(tinyLlama().bytes()));
  const auto& vocab = std::get<GgufArray>(info.metadata.at("tokenizer.ggml.tokens"));
  EXPECT_EQ(vocab.elementType, GgufValueType::String);
  EXPECT_EQ(vocab.count, 100u);
  EXPECT_TRUE(vocab.elements.empty());
  const auto& types = std::get<GgufArray>(info.metadata.at("tokenizer.ggml.token_type"));
  EXPECT_EQ(types.elementType, GgufValueType::Int32);
  ASSERT_EQ(types.elements.size(), 3u);
  EXPECT_EQ(std::get<std::int64_t>(types.elements[1]), 3);

  GgufWriter writer;
  writer.strings("small", tokens(64)).strings("large", tokens(65));
  GgufInfo limits = ok(parseWhole(writer.bytes()));
  EXPECT_EQ(std::get<GgufArray>(limits.metadata.at("small")).elements.size(), 64u);
  EXPECT_EQ(std::get<std::string>(std::get<GgufArray>(limits.metadata.at("small")).elements[63]),
            "tok63");
  EXPECT_TRUE(std::get<GgufArray>(limits.metadata.at("large")).elements.empty());
}

TEST(Gguf, TensorsHaveTheirShapesTypesOffsetsAndBytes) {
  GgufInfo info = ok(parseWhole(tinyLlama().bytes()));
  ASSERT_EQ(info.tensors.size(), 5u);
  const GgufTensor& embed = info.tensors[0];
  EXPECT_EQ(embed.name, "token_embd.weight");
  EXPECT_EQ(embed.shape, (std::vector<std::uint64_t>{256, 8}));
  EXPECT_EQ(embed.type, kGgmlQ4_K);
  EXPECT_EQ(embed.offset, 0u);
  EXPECT_EQ(embed.bytes, 8u * 144);  // 8 blocks of 256 values
  EXPECT_EQ(info.tensors[1].bytes, 256u * 4);
  EXPECT_EQ(info.tensors[1].offset, 1152u);
  EXPECT_EQ(info.tensors[2].bytes, 4u * 144);
  EXPECT_EQ(info.tensors[3].bytes, 4u * 210);
  EXPECT_EQ(info.tensors[4].bytes, 8u * 210);
  for (const auto& tensor : info.tensors) {
    EXPECT_EQ(tensor.offset % info.alignment, 0u) << tensor.name;
    EXPECT_EQ(tensor.bytes, GgufWriter::tensorBytes(tensor.type, tensor.shape)) << tensor.name;
  }
  EXPECT_EQ(info.parameterCount, 2048u + 256 + 1024 + 1024 + 2048);
  EXPECT_EQ(info.tensorDataBytes, 1152u + 1024 + 576 + 840 + 1680);
  EXPECT_EQ(ggmlTypeName(info.tensors[3].type), "Q6_K");
}

TEST(Gguf, Qwen2WithQ8_0F16AndQ4_0Tensors) {
  GgufInfo info = ok(parseWhole(qwen2().bytes()));
  EXPECT_EQ(info.architecture, "qwen2");
  EXPECT_EQ(info.quantization, "Q8_0");
  EXPECT_EQ(info.blockCount, 28u);
  EXPECT_EQ(info.headCountKv, 4u);
  ASSERT_EQ(info.tensors.size(), 3u);
  EXPECT_EQ(info.tensors[0].bytes, 8u * 34);
  EXPECT_EQ(info.tensors[1].bytes, 64u * 2);
  EXPECT_EQ(info.tensors[2].bytes, 2u * 18);
  EXPECT_EQ(info.parameterCount, 256u + 64 + 64);
}

TEST(Gguf, FileTypeNames) {
  EXPECT_EQ(fileTypeName(0), "F32");
  EXPECT_EQ(fileTypeName(1), "F16");
  EXPECT_EQ(fileTypeName(2), "Q4_0");
  EXPECT_EQ(fileTypeName(12), "Q3_K_M");
  EXPECT_EQ(fileTypeName(18), "Q6_K");
  EXPECT_EQ(fileTypeName(32), "BF16");
  EXPECT_EQ(fileTypeName(5), "");
  EXPECT_EQ(fileTypeName(1000), "");
  EXPECT_EQ(ggmlTypeName(30), "BF16");
  EXPECT_EQ(ggmlTypeName(4), "");
}

TEST(Gguf, WithoutFileTypeTheQuantisationIsTheTypeHoldingMostBytes) {
  GgufWriter writer;
  writer.string("general.architecture", "llama")
      .tensor("a", {256, 4}, kGgmlQ4_K)
      .tensor("b", {256}, kGgmlF32)
      .tensor("c", {256, 8}, kGgmlQ4_K);
  GgufInfo info = ok(parseWhole(writer.bytes()));
  EXPECT_FALSE(info.fileType);
  EXPECT_EQ(info.quantization, "Q4_K");
  EXPECT_FALSE(info.blockCount);

  GgufWriter unknown;
  unknown.u32("general.file_type", 999);
  EXPECT_EQ(ok(parseWhole(unknown.bytes())).quantization, "unknown file type 999");
}

TEST(Gguf, HeadCountKvDefaultsToHeadCount) {
  GgufWriter writer;
  writer.string("general.architecture", "llama").u32("llama.attention.head_count", 32);
  EXPECT_EQ(ok(parseWhole(writer.bytes())).headCountKv, 32u);
}

TEST(Gguf, ReadsVersion2Files) {
  GgufWriter writer(2);
  writer.string("general.architecture", "llama").tensor("t", {32}, kGgmlF32);
  GgufInfo info = ok(parseWhole(writer.bytes()));
  EXPECT_EQ(info.version, 2u);
  EXPECT_EQ(info.tensors.size(), 1u);
}

TEST(Gguf, HonoursGeneralAlignment) {
  GgufWriter writer;
  writer.alignment = 64;
  writer.u32("general.alignment", 64).tensor("a", {8}, kGgmlF32).tensor("b", {8}, kGgmlF32);
  GgufInfo info = ok(parseWhole(writer.bytes()));
  EXPECT_EQ(info.alignment, 64u);
  EXPECT_EQ(info.dataOffset % 64, 0u);
  EXPECT_EQ(info.tensors[1].offset, 64u);

  GgufWriter odd;
  odd.u32("general.alignment", 48);
  EXPECT_NE(errorOf(parseWhole(odd.bytes())).find("general.alignment"), std::string::npos);
  GgufWriter zero;
  zero.u32("general.alignment", 0);
  EXPECT_NE(errorOf(parseWhole(zero.bytes())).find("general.alignment"), std::string::npos);
}

TEST(Gguf, EveryTruncationIsReportedAsTruncatedWithSizes) {
  const std::string bytes = tinyLlama().bytes();
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string message = errorOf(parseGguf(bytes.substr(0, cut), cut));
    EXPECT_NE(message.find("truncated"), std::string::npos) << cut << ": " << message;
    EXPECT_NE(message.find("copy it again"), std::string::npos) << cut << ": " << message;
    EXPECT_NE(message.find(std::to_string(cut) + " bytes"), std::string::npos)
        << cut << ": " << message;
  }
}

TEST(Gguf, TheHeaderAloneIsEnoughAndLessSaysSo) {
  GgufWriter writer = tinyLlama();
  const std::string bytes = writer.bytes();
  GgufInfo info = ok(parseGguf(bytes.substr(0, writer.dataOffset()), bytes.size()));
  EXPECT_EQ(info.tensors.size(), 5u);
  std::string message = errorOf(parseGguf(bytes.substr(0, 100), bytes.size()));
  EXPECT_NE(message.find("continues past the 100 bytes given"), std::string::npos) << message;
}

TEST(Gguf, TruncatedFilesOnDiskNameTheirSizes) {
  test::TempDir dir;
  const std::string bytes = tinyLlama().bytes();
  for (std::size_t cut : {std::size_t{0}, std::size_t{3}, std::size_t{30}, std::size_t{500},
                          bytes.size() / 2, bytes.size() - 1}) {
    auto path = dir.path() / ("cut-" + std::to_string(cut) + ".gguf");
    test::writeFile(path, bytes.substr(0, cut));
    std::string message = errorOf(readGguf(path));
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
    EXPECT_NE(message.find("the file has only " + std::to_string(cut) + " bytes"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(path.filename().string()), std::string::npos) << message;
  }
  test::writeFile(dir.path() / "whole.gguf", bytes);
  EXPECT_EQ(ok(readGguf(dir.path() / "whole.gguf")).tensors.size(), 5u);
}

TEST(Gguf, ReadsAHeaderLargerThanTheFirstRead) {
  test::TempDir dir;
  GgufWriter writer;
  writer.string("general.architecture", "qwen2")
      .strings("tokenizer.ggml.tokens", tokens(600'000))
      .tensor("t", {32}, kGgmlF32);
  std::string bytes = writer.bytes();
  ASSERT_GT(bytes.size(), 8u << 20);
  test::writeFile(dir.path() / "big.gguf", bytes);
  GgufInfo info = ok(readGguf(dir.path() / "big.gguf"));
  EXPECT_EQ(std::get<GgufArray>(info.metadata.at("tokenizer.ggml.tokens")).count, 600'000u);
  EXPECT_EQ(info.tensors.size(), 1u);
}

TEST(Gguf, MissingFilesAndDirectoriesAreErrorsNamingThePath) {
  test::TempDir dir;
  EXPECT_NE(errorOf(readGguf(dir.path() / "none.gguf")).find("none.gguf"), std::string::npos);
  EXPECT_NE(errorOf(readGguf(dir.path())).find("not a regular file"), std::string::npos);
}

TEST(Gguf, RefusesCorruptHeaders) {
  const std::string good = tinyLlama().bytes();
  auto expectError = [](const std::string& bytes, const std::string& part) {
    std::string message = errorOf(parseWhole(bytes));
    EXPECT_NE(message.find(part), std::string::npos) << "want '" << part << "' in: " << message;
  };

  std::string badMagic = good;
  badMagic[0] = 'X';
  expectError(badMagic, "not a GGUF file");
  expectError(GgufWriter(99).bytes(), "GGUF version 99 is not supported");
  expectError(GgufWriter(1).bytes(), "version 1 is obsolete");
  expectError(GgufWriter(0x03000000).bytes(), "big-endian");

  std::string hugeKey = good;
  putU64(hugeKey, 24, 1ull << 62);  // the first key's length
  expectError(hugeKey, "claims");
  expectError(hugeKey, "corrupt");

  std::string hugeTensorCount = good;
  putU64(hugeTensorCount, 8, 1ull << 40);
  expectError(hugeTensorCount, "1099511627776 tensors");
  std::string manyTensors = good;
  putU64(manyTensors, 8, 100'000);  // within the limit, but more than the file can hold
  expectError(manyTensors, "can describe");
  std::string hugeMetadataCount = good;
  putU64(hugeMetadataCount, 16, ~0ull);
  expectError(hugeMetadataCount, "metadata entries");

  expectError(GgufWriter().tensor("t", {1, 1, 1, 1, 1, 1, 1}, kGgmlF32).bytes(),
              "7 dimensions, more than the 4");
  expectError(GgufWriter().tensor("t", {32}, 99).bytes(), "unknown tensor type 99");
  expectError(GgufWriter().tensor("t", {32}, 4).bytes(), "unknown tensor type 4");
  expectError(GgufWriter().tensor("t", {32}, kGgmlF32, 16).bytes(),
              "not a multiple of the alignment 32");
  expectError(GgufWriter().tensor("t", {100}, kGgmlQ4_K).bytes(), "not a whole number of Q4_K");
  expectError(GgufWriter().tensor("t", {32}, kGgmlF32).tensor("t", {32}, kGgmlF32).bytes(),
              "tensor name appears twice");
  expectError(GgufWriter().u32("k", 1).u32("k", 2).bytes(), "key appears twice");
  expectError(GgufWriter().tensor("t", {1ull << 62, 4}, kGgmlF32).bytes(), "multiply past");
}

TEST(Gguf, TensorPastTheEndOfTheFileIsTruncation) {
  GgufWriter writer;
  writer.tensor("a", {32}, kGgmlF32).tensor("b", {64}, kGgmlF32);
  std::string bytes = writer.bytes();
  std::string message = errorOf(parseGguf(bytes, bytes.size() - 1));
  EXPECT_NE(message.find("tensor 'b' needs a file of " + std::to_string(bytes.size()) + " bytes"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("the file has only " + std::to_string(bytes.size() - 1)),
            std::string::npos)
      << message;

  GgufWriter far;
  far.tensor("far", {32}, kGgmlF32, 1ull << 40);
  std::string header = far.header();
  message = errorOf(parseGguf(header, header.size() + 128));
  EXPECT_NE(message.find("1.0 TiB"), std::string::npos) << message;
}

TEST(Gguf, RefusesCorruptValues) {
  std::string nested = GgufWriter().u32("k", 1).bytes();
  // Turn "k": u32 into an array of arrays.
  std::size_t typeAt = 24 + 8 + 1;
  nested[typeAt] = 9;
  nested += std::string(16, '\0');
  nested[typeAt + 4] = 9;
  EXPECT_NE(errorOf(parseWhole(nested)).find("arrays"), std::string::npos);

  std::string badBool = GgufWriter().boolean("b", true).bytes();
  badBool[24 + 8 + 1 + 4] = 7;
  EXPECT_NE(errorOf(parseWhole(badBool)).find("boolean"), std::string::npos);

  std::string badType = GgufWriter().u32("k", 1).bytes();
  badType[typeAt] = 13;
  EXPECT_NE(errorOf(parseWhole(badType)).find("unknown value type 13"), std::string::npos);
}

TEST(Memory, GgufEstimateByHand) {
  GgufInfo llama = ok(parseWhole(tinyLlama().bytes()));
  MemoryEstimate tiny = ok(estimateMemory(llama));
  // 2 (K, V) x 1 layer x 4096 positions x 2 kv heads x 32 (256 / 8) x 2 bytes
  EXPECT_EQ(tiny.kvCacheBytes, 1'048'576u);
  EXPECT_EQ(tiny.weightsBytes, 5272u);
  EXPECT_EQ(tiny.totalBytes, 1'048'576u + 5272);
  EXPECT_EQ(tiny.contextLength, 4096u);
  EXPECT_EQ(ok(estimateMemory(llama, 1024)).kvCacheBytes, 262'144u);

  GgufInfo qwen = ok(parseWhole(qwen2().bytes()));
  MemoryEstimate q = ok(estimateMemory(qwen));
  // 2 x 28 layers x 32768 x 4 kv heads x 128 (3584 / 28) x 2 bytes = 1.75 GiB
  EXPECT_EQ(q.kvCacheBytes, 1'879'048'192u);
  EXPECT_EQ(q.weightsBytes, 272u + 128 + 36);
  EXPECT_EQ(q.contextLength, 32768u);
}

TEST(Memory, GgufKeyAndValueLengthsOverrideEmbeddingOverHeads) {
  GgufWriter writer;
  writer.string("general.architecture", "gemma2")
      .u32("gemma2.block_count", 2)
      .u32("gemma2.context_length", 8192)
      .u32("gemma2.embedding_length", 2304)
      .u32("gemma2.attention.head_count", 8)
      .u32("gemma2.attention.head_count_kv", 4)
      .u32("gemma2.attention.key_length", 256)
      .u32("gemma2.attention.value_length", 256);
  MemoryEstimate estimate = ok(estimateMemory(ok(parseWhole(writer.bytes()))));
  // 2 layers x 8192 x 4 kv heads x (256 + 256) x 2 bytes
  EXPECT_EQ(estimate.kvCacheBytes, 2ull * 8192 * 4 * 512 * 2);
}

TEST(Memory, GgufWithoutAttentionSizesSaysWhatIsMissing) {
  GgufWriter writer;
  writer.string("general.architecture", "llama").u32("llama.block_count", 2);
  std::string message = errorOf(estimateMemory(ok(parseWhole(writer.bytes()))));
  EXPECT_NE(message.find("llama.attention.head_count"), std::string::npos) << message;
  EXPECT_NE(errorOf(estimateMemory(GgufInfo{})).find("general.architecture"), std::string::npos);
}

// A safetensors file: the 8-byte length, the JSON header, `dataBytes` zero bytes.
std::string safetensors(const std::string& json, std::size_t dataBytes) {
  std::string out(8, '\0');
  putU64(out, 0, json.size());
  return out + json + std::string(dataBytes, '\0');
}

const std::string kGoodHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("model.embed_tokens.weight":{"dtype":"BF16","shape":[16,8],"data_offsets":[0,256]},)"
    R"("lm_head.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[256,320]}})";

TEST(Safetensors, ReadsTensorsAndMetadata) {
  test::TempDir dir;
  std::string bytes = safetensors(kGoodHeader, 320);
  test::writeFile(dir.path() / "model.safetensors", bytes);
  SafetensorsInfo info = ok(readSafetensors(dir.path() / "model.safetensors"));
  EXPECT_EQ(info.headerBytes, kGoodHeader.size());
  EXPECT_EQ(info.metadata.at("format"), "pt");
  ASSERT_EQ(info.tensors.size(), 2u);
  EXPECT_EQ(info.tensors[0].name, "model.embed_tokens.weight");
  EXPECT_EQ(info.tensors[0].dtype, "BF16");
  EXPECT_EQ(info.tensors[0].shape, (std::vector<std::uint64_t>{16, 8}));
  EXPECT_EQ(info.tensors[1].begin, 256u);
  EXPECT_EQ(info.tensors[1].end, 320u);
  EXPECT_EQ(info.parameterCount, 128u + 16);
  EXPECT_EQ(info.dataBytes, 320u);
}

TEST(Safetensors, RefusesBadHeaders) {
  auto expectError = [](const std::string& bytes, const std::string& part) {
    std::string message = errorOf(parseSafetensors(bytes, bytes.size()));
    EXPECT_NE(message.find(part), std::string::npos) << "want '" << part << "' in: " << message;
  };
  expectError("abc", "truncated");
  std::string tooLong = safetensors("{}", 0);
  putU64(tooLong, 0, 1000);
  expectError(tooLong, "truncated");
  putU64(tooLong, 0, 1ull << 40);
  expectError(tooLong, "more than the");
  expectError(safetensors("{not json", 0), "not valid JSON");
  expectError(safetensors("[1,2]", 0), "not a JSON object");
  expectError(safetensors(R"({"t":{"dtype":"Q9","shape":[2],"data_offsets":[0,2]}})", 2),
              "unknown dtype 'Q9'");
  expectError(safetensors(R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0,2]}})", 2),
              "not what its dtype and shape need");
  expectError(safetensors(R"({"t":{"dtype":"F16","shape":[-2],"data_offsets":[0,4]}})", 4),
              "shape");
  expectError(safetensors(R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[4,0]}})", 4),
              "data_offsets");
  expectError(safetensors(R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", 3),
              "truncated");
  expectError(safetensors(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                          R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                          4),
              "overlaps");
  expectError(safetensors(R"({"__metadata__":{"n":1}})", 0), "not a string");
  expectError(safetensors(R"({"t":{"dtype":"F16","shape":[4294967296,4294967296],)"
                          R"("data_offsets":[0,0]}})",
                          0),
              "not what its dtype and shape need");
}

TEST(Safetensors, EveryTruncationIsAnError) {
  const std::string bytes = safetensors(kGoodHeader, 320);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string message = errorOf(parseSafetensors(bytes.substr(0, cut), cut));
    EXPECT_NE(message.find("truncated"), std::string::npos) << cut << ": " << message;
  }
}

const std::string kQwenConfig = R"({
  "architectures": ["Qwen2ForCausalLM"],
  "model_type": "qwen2",
  "hidden_size": 3584,
  "num_hidden_layers": 28,
  "num_attention_heads": 28,
  "num_key_value_heads": 4,
  "max_position_embeddings": 32768,
  "torch_dtype": "bfloat16",
  "vocab_size": 152064,
  "rope_theta": 1000000.0
})";

TEST(HfConfig, ReadsTheModelSizes) {
  test::TempDir dir;
  test::writeFile(dir.path() / "config.json", kQwenConfig);
  HfConfig config = ok(readHfConfig(dir.path() / "config.json"));
  EXPECT_EQ(config.architecture, "Qwen2ForCausalLM");
  EXPECT_EQ(config.modelType, "qwen2");
  EXPECT_EQ(config.numHiddenLayers, 28u);
  EXPECT_EQ(config.hiddenSize, 3584u);
  EXPECT_EQ(config.numAttentionHeads, 28u);
  EXPECT_EQ(config.numKeyValueHeads, 4u);
  EXPECT_EQ(config.maxPositionEmbeddings, 32768u);
  EXPECT_EQ(config.torchDtype, "bfloat16");
  EXPECT_EQ(config.vocabSize, 152064u);
  EXPECT_FALSE(config.headDim);
}

TEST(HfConfig, DefaultsAndTextConfig) {
  HfConfig plain = ok(parseHfConfig(R"({"num_attention_heads": 32, "dtype": "float16"})"));
  EXPECT_EQ(plain.numKeyValueHeads, 32u);
  EXPECT_EQ(plain.torchDtype, "float16");
  EXPECT_TRUE(plain.architecture.empty());

  HfConfig multimodal = ok(parseHfConfig(
      R"({"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
          "text_config": {"num_hidden_layers": 34, "hidden_size": 2560, "head_dim": 256,
                          "num_attention_heads": 8, "num_key_value_heads": 4}})"));
  EXPECT_EQ(multimodal.modelType, "gemma3");
  EXPECT_EQ(multimodal.numHiddenLayers, 34u);
  EXPECT_EQ(multimodal.headDim, 256u);
  EXPECT_EQ(multimodal.numKeyValueHeads, 4u);
}

TEST(HfConfig, RefusesMalformedFiles) {
  EXPECT_NE(errorOf(parseHfConfig("{\"a\": ")).find("not valid JSON"), std::string::npos);
  EXPECT_NE(errorOf(parseHfConfig("[]")).find("not a JSON object"), std::string::npos);
  EXPECT_NE(errorOf(parseHfConfig(R"({"num_hidden_layers": "28"})")).find("num_hidden_layers"),
            std::string::npos);
  EXPECT_NE(errorOf(parseHfConfig(R"({"hidden_size": -1})")).find("negative"), std::string::npos);
  EXPECT_NE(errorOf(parseHfConfig(R"({"architectures": "Qwen"})")).find("architectures"),
            std::string::npos);
  test::TempDir dir;
  EXPECT_NE(errorOf(readHfConfig(dir.path() / "config.json")).find("config.json"),
            std::string::npos);
}

TEST(Memory, SafetensorsDirectoryByHand) {
  test::TempDir dir;
  test::writeFile(dir.path() / "config.json", kQwenConfig);
  test::writeFile(dir.path() / "model-00001-of-00002.safetensors", safetensors(kGoodHeader, 320));
  test::writeFile(dir.path() / "model-00002-of-00002.safetensors",
                  safetensors(R"({"w":{"dtype":"F16","shape":[10],"data_offsets":[0,20]}})", 20));
  test::writeFile(dir.path() / "README.md", "not weights");
  MemoryEstimate estimate = ok(estimateSafetensorsMemory(dir.path()));
  EXPECT_EQ(estimate.weightsBytes, 340u);
  EXPECT_EQ(estimate.kvCacheBytes, 1'879'048'192u);  // as for Qwen2-7B's GGUF above
  EXPECT_EQ(estimate.totalBytes, 1'879'048'192u + 340);
  EXPECT_EQ(estimate.contextLength, 32768u);
  EXPECT_EQ(ok(estimateSafetensorsMemory(dir.path(), 4096)).kvCacheBytes, 1'879'048'192u / 8);

  test::writeFile(dir.path() / "model-00002-of-00002.safetensors", "short");
  EXPECT_NE(errorOf(estimateSafetensorsMemory(dir.path())).find("model-00002-of-00002"),
            std::string::npos);
  test::TempDir empty;
  test::writeFile(empty.path() / "config.json", kQwenConfig);
  EXPECT_NE(errorOf(estimateSafetensorsMemory(empty.path())).find("no *.safetensors"),
            std::string::npos);
}

}  // namespace
}  // namespace aibox::modelfile
