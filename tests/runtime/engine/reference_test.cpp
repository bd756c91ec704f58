// The engine's logits against a deliberately plain reference forward pass written here from
// the model definitions: every weight turned into floats (kernels::dequantizeRow, whose block
// layouts the kernel tests pin with hand-built blocks), then textbook float math with no
// shared code: matrix products, RMSNorm, RoPE, causal grouped-query attention, SwiGLU.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/engine/model.hpp"
#include "runtime/engine/test_model.hpp"
#include "tests/support/files.hpp"

namespace aibox::engine {
namespace {

using Matrix = std::vector<float>;  // row-major

Matrix floats(const Weight& w) {
  Matrix out(w.rows * w.cols);
  std::size_t rowBytes = kernels::rowBytes(w.type, w.cols);
  for (std::size_t r = 0; r < w.rows; ++r) {
    kernels::dequantizeRow(w.type, static_cast<const char*>(w.data) + r * rowBytes,
                           out.data() + r * w.cols, w.cols);
  }
  return out;
}

// y (tokens x rows) = x (tokens x cols) * w^T
Matrix linear(const Matrix& x, const Weight& weight) {
  Matrix w = floats(weight);
  std::size_t tokens = x.size() / weight.cols;
  Matrix y(tokens * weight.rows);
  for (std::size_t t = 0; t < tokens; ++t) {
    for (std::size_t r = 0; r < weight.rows; ++r) {
      double sum = 0;
      for (std::size_t k = 0; k < weight.cols; ++k) {
        sum += static_cast<double>(x[t * weight.cols + k]) * w[r * weight.cols + k];
      }
      y[t * weight.rows + r] = static_cast<float>(sum);
    }
  }
  return y;
}

Matrix rmsNorm(const Matrix& x, const Weight& weight, float epsilon) {
  Matrix w = floats(weight);
  std::size_t width = w.size();
  Matrix y(x.size());
  for (std::size_t t = 0; t < x.size() / width; ++t) {
    double mean = 0;
    for (std::size_t i = 0; i < width; ++i) {
      mean += static_cast<double>(x[t * width + i]) * x[t * width + i] / static_cast<double>(width);
    }
    double scale = 1.0 / std::sqrt(mean + epsilon);
    for (std::size_t i = 0; i < width; ++i) {
      y[t * width + i] = static_cast<float>(x[t * width + i] * scale * w[i]);
    }
  }
  return y;
}

void addBias(Matrix& x, const Weight& bias) {
  Matrix b = floats(bias);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] += b[i % b.size()];
  }
}

// Rotates each head's leading pairs by position x base^(-2i/dims). llama pairs neighbours,
// qwen2 (NeoX) pairs the two halves.
void rotate(Matrix& x, std::size_t heads, const ModelConfig& c, std::size_t firstPosition) {
  std::size_t width = heads * c.headDim;
  for (std::size_t t = 0; t < x.size() / width; ++t) {
    for (std::size_t h = 0; h < heads; ++h) {
      float* v = &x[t * width + h * c.headDim];
      for (std::size_t i = 0; i < c.ropeDims / 2; ++i) {
        double theta =
            static_cast<double>(firstPosition + t) *
            std::pow(static_cast<double>(c.ropeBase), -2.0 * static_cast<double>(i) / c.ropeDims);
        std::size_t a = c.ropeStyle == RopeStyle::Neox ? i : 2 * i;
        std::size_t b = c.ropeStyle == RopeStyle::Neox ? i + c.ropeDims / 2 : 2 * i + 1;
        double x0 = v[a], x1 = v[b];
        v[a] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
        v[b] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
      }
    }
  }
}

// Logits of the last token of `tokens`, computed from scratch.
std::vector<float> referenceLogits(const Model& model, const std::vector<Token>& tokens) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  std::size_t n = tokens.size(), e = c.embedding;
  Matrix table = floats(w.tokenEmbedding);
  Matrix hidden(n * e);
  for (std::size_t t = 0; t < n; ++t) {
    std::copy_n(&table[static_cast<std::size_t>(tokens[t]) * e], e, &hidden[t * e]);
  }
  std::size_t group = c.heads / c.kvHeads;
  for (const LayerWeights& layer : w.layers) {
    Matrix x = rmsNorm(hidden, layer.attentionNorm, c.rmsEpsilon);
    Matrix q = linear(x, layer.q), k = linear(x, layer.k), v = linear(x, layer.v);
    if (c.attentionBias) {
      addBias(q, layer.qBias);
      addBias(k, layer.kBias);
      addBias(v, layer.vBias);
    }
    rotate(q, c.heads, c, 0);
    rotate(k, c.kvHeads, c, 0);
    Matrix attended(n * c.heads * c.headDim, 0.0f);
    for (std::size_t t = 0; t < n; ++t) {
      for (std::size_t h = 0; h < c.heads; ++h) {
        std::size_t kvh = h / group;
        std::vector<double> weights(t + 1);
        double best = -1e300, total = 0;
        for (std::size_t p = 0; p <= t; ++p) {
          double score = 0;
          for (std::size_t d = 0; d < c.headDim; ++d) {
            score += static_cast<double>(q[(t * c.heads + h) * c.headDim + d]) *
                     k[(p * c.kvHeads + kvh) * c.headDim + d];
          }
          weights[p] = score / std::sqrt(static_cast<double>(c.headDim));
          best = std::max(best, weights[p]);
        }
        for (auto& weight : weights) {
          weight = std::exp(weight - best);
          total += weight;
        }
        for (std::size_t p = 0; p <= t; ++p) {
          for (std::size_t d = 0; d < c.headDim; ++d) {
            attended[(t * c.heads + h) * c.headDim + d] +=
                static_cast<float>(weights[p] / total * v[(p * c.kvHeads + kvh) * c.headDim + d]);
          }
        }
      }
    }
    Matrix projected = linear(attended, layer.output);
    for (std::size_t i = 0; i < hidden.size(); ++i) {
      hidden[i] += projected[i];
    }
    x = rmsNorm(hidden, layer.ffnNorm, c.rmsEpsilon);
    Matrix gate = linear(x, layer.gate), up = linear(x, layer.up);
    for (std::size_t i = 0; i < gate.size(); ++i) {
      gate[i] =
          static_cast<float>(gate[i] / (1.0 + std::exp(-static_cast<double>(gate[i]))) * up[i]);
    }
    projected = linear(gate, layer.down);
    for (std::size_t i = 0; i < hidden.size(); ++i) {
      hidden[i] += projected[i];
    }
  }
  Matrix last(hidden.end() - static_cast<std::ptrdiff_t>(e), hidden.end());
  return linear(rmsNorm(last, w.outputNorm, c.rmsEpsilon), w.output);
}

struct Case {
  std::string arch;
  std::string type;
  double tolerance;  // of the largest logit difference, relative to the largest |logit|
};

std::string caseName(const testing::TestParamInfo<Case>& info) {
  return info.param.arch + "_" + info.param.type;
}

// One model per (arch, type), written once for the whole test binary.
const Model& testModel(const std::string& arch, const std::string& type, bool tied = false) {
  static test::TempDir dir;
  static std::map<std::string, std::unique_ptr<Model>> models;
  std::string key = arch + "-" + type + (tied ? "-tied" : "");
  auto& model = models[key];
  if (!model) {
    TestModelSpec spec;
    spec.architecture = arch;
    spec.type = type;
    spec.layers = 2;
    spec.embedding = 256;
    spec.feedForward = 512;
    spec.heads = 4;
    spec.kvHeads = 2;
    spec.vocabulary = 400;
    spec.tiedOutput = tied;
    spec.seed = 7;
    auto path = dir.path() / (key + ".gguf");
    writeTestModel(spec, path);
    auto file = GgufFile::open(path);
    if (auto* error = std::get_if<Error>(&file)) {
      ADD_FAILURE() << error->message;
      std::abort();
    }
    auto loaded = Model::load(std::get<0>(file));
    if (auto* error = std::get_if<Error>(&loaded)) {
      ADD_FAILURE() << error->message;
      std::abort();
    }
    model = std::move(std::get<0>(loaded));
  }
  return *model;
}

std::vector<float> engineLogits(const Model& model, const std::vector<Token>& tokens,
                                unsigned threads, std::size_t batch) {
  auto backend = makeCpuBackend(threads);
  Forward forward(model, *backend);
  KvCache cache(model.config(), 64);
  std::vector<float> logits;
  for (std::size_t at = 0; at < tokens.size(); at += batch) {
    std::size_t count = std::min(batch, tokens.size() - at);
    SequenceInput input{&cache, std::span<const Token>(tokens).subspan(at, count), true};
    auto result = forward.run(std::span<const SequenceInput>(&input, 1));
    EXPECT_TRUE(std::holds_alternative<std::vector<std::vector<float>>>(result));
    logits = std::get<0>(result).at(0);
  }
  return logits;
}

double relativeError(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  return worst / scale;
}

const std::vector<Token> kPrompt = {5, 17, 42, 300, 7, 99, 123, 64, 250};

class ReferenceTest : public testing::TestWithParam<Case> {};

TEST_P(ReferenceTest, LogitsMatchThePlainForwardPassAtOneAndSeveralThreads) {
  const Case& c = GetParam();
  const Model& model = testModel(c.arch, c.type);
  std::vector<float> want = referenceLogits(model, kPrompt);
  ASSERT_EQ(want.size(), model.config().vocabulary);
  // Both kernel sets (the AVX2 one only where the CPU has it).
  for (auto isa : {kernels::Isa::Portable, kernels::detectedIsa()}) {
    kernels::setIsa(isa);
    for (unsigned threads : {1u, 3u}) {
      // The whole prompt in one batch, in pieces of 4, and token by token (generation).
      for (std::size_t batch : {kPrompt.size(), std::size_t{4}, std::size_t{1}}) {
        auto got = engineLogits(model, kPrompt, threads, batch);
        ASSERT_EQ(got.size(), want.size());
        EXPECT_LT(relativeError(got, want), c.tolerance)
            << kernels::isaName(isa) << ", " << threads << " threads, batch " << batch;
      }
    }
  }
  kernels::setIsa(kernels::detectedIsa());
}

// Tolerances: float weights with float activations agree to rounding; the quantised types
// multiply 8-bit quantised activations, as every CPU engine does.
INSTANTIATE_TEST_SUITE_P(EveryTypeAndArchitecture, ReferenceTest,
                         testing::Values(Case{"llama", "f32", 1e-4}, Case{"llama", "f16", 1e-3},
                                         Case{"llama", "bf16", 1e-3}, Case{"llama", "q8_0", 3e-2},
                                         Case{"llama", "q4_0", 3e-2}, Case{"llama", "q4_k", 3e-2},
                                         Case{"llama", "q6_k", 3e-2}, Case{"llama", "q4_k_m", 3e-2},
                                         Case{"qwen2", "f32", 1e-4}, Case{"qwen2", "f16", 1e-3},
                                         Case{"qwen2", "bf16", 1e-3}, Case{"qwen2", "q8_0", 3e-2},
                                         Case{"qwen2", "q4_0", 3e-2}, Case{"qwen2", "q4_k", 3e-2},
                                         Case{"qwen2", "q6_k", 3e-2},
                                         Case{"qwen2", "q4_k_m", 3e-2}),
                         caseName);

TEST(Reference, TiedOutputUsesTheTokenEmbedding) {
  const Model& model = testModel("qwen2", "q8_0", true);
  EXPECT_TRUE(model.config().tiedOutput);
  EXPECT_LT(relativeError(engineLogits(model, kPrompt, 2, 4), referenceLogits(model, kPrompt)),
            3e-2);
}

TEST(Reference, SequencesInOneBatchMatchTheSameSequencesRunAlone) {
  const Model& model = testModel("qwen2", "f32");
  std::vector<Token> a = {1, 2, 3, 4, 5}, b = {9, 8, 7};
  auto backend = makeCpuBackend(2);
  Forward forward(model, *backend);
  KvCache cacheA(model.config(), 32), cacheB(model.config(), 32);
  SequenceInput batch[] = {{&cacheA, a, true}, {&cacheB, b, true}};
  auto result = forward.run(batch);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::vector<float>>>(result));
  const auto& logits = std::get<0>(result);
  ASSERT_EQ(logits.size(), 2u);
  EXPECT_LT(relativeError(logits[0], referenceLogits(model, a)), 1e-4);
  EXPECT_LT(relativeError(logits[1], referenceLogits(model, b)), 1e-4);
  // Then one more token each, again together: each continues its own sequence.
  Token nextA = 11, nextB = 12;
  SequenceInput more[] = {{&cacheA, std::span<const Token>(&nextA, 1), true},
                          {&cacheB, std::span<const Token>(&nextB, 1), true}};
  result = forward.run(more);
  ASSERT_TRUE(std::holds_alternative<std::vector<std::vector<float>>>(result));
  a.push_back(nextA);
  b.push_back(nextB);
  EXPECT_LT(relativeError(std::get<0>(result)[0], referenceLogits(model, a)), 1e-4);
  EXPECT_LT(relativeError(std::get<0>(result)[1], referenceLogits(model, b)), 1e-4);
}

}  // namespace
}  // namespace aibox::engine
