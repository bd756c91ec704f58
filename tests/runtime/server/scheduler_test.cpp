// The scheduler on a generated model in-process: KV blocks always come back, a long prompt
// never holds up the running sequences for more than a step, batching and the prefix cache
// keep results. And the block manager's accounting on its own.
#include "runtime/server/scheduler.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <numeric>
#include <set>

#include "runtime/engine/test_model.hpp"
#include "tests/support/files.hpp"

namespace aibox::server {
namespace {

class SchedulerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    engine::TestModelSpec spec;
    spec.architecture = "qwen2";
    spec.embedding = 128;
    spec.feedForward = 256;
    spec.context = 4096;
    auto path = dir_->path() / "m.gguf";
    engine::writeTestModel(spec, path);
    auto file = std::get<0>(engine::GgufFile::open(path));
    model_ = std::get<0>(engine::Model::load(file)).release();
    backend_ = engine::makeCpuBackend(1).release();
  }
  static void TearDownTestSuite() {
    delete backend_;
    delete model_;
    delete dir_;
  }

  struct Outcome {
    std::vector<Token> tokens;
    std::vector<std::uint64_t> steps;  // the scheduler's step count at each piece
    Finish finish;
  };

  // Submits a greedy job and returns a future of its outcome.
  static std::future<Outcome> submit(Scheduler& s, std::vector<Token> prompt, std::uint32_t max,
                                     std::shared_ptr<Ticket>* ticket = nullptr) {
    auto promise = std::make_shared<std::promise<Outcome>>();
    auto outcome = std::make_shared<Outcome>();
    Job job;
    job.prompt = std::move(prompt);
    job.sampling.temperature = 0;
    job.maxTokens = max;
    job.topLogprobs = 0;
    job.onPiece = [outcome, &s](Piece p) {
      outcome->tokens.push_back(p.chosen->token);
      outcome->steps.push_back(s.stats().steps);
    };
    job.onFinish = [outcome, promise](const Finish& f) {
      outcome->finish = f;
      promise->set_value(*outcome);
    };
    auto t = s.submit(std::move(job));
    EXPECT_NE(t, nullptr);
    if (ticket != nullptr) {
      *ticket = t;
    }
    return promise->get_future();
  }

  static std::vector<Token> prompt(int seed, std::size_t length) {
    std::vector<Token> out;
    for (std::size_t i = 0; i < length; ++i) {
      out.push_back(static_cast<Token>((seed * 131 + static_cast<int>(i) * 17) % 900 + 10));
    }
    return out;
  }

  static void waitIdle(const Scheduler& s) {
    while (!s.idle()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  static inline test::TempDir* dir_ = nullptr;
  static inline engine::Model* model_ = nullptr;
  static inline engine::Backend* backend_ = nullptr;
};

TEST_F(SchedulerTest, EveryBlockComesBackWhateverEndsTheJobs) {
  Scheduler s(*model_, *backend_, {.parallel = 3, .context = 128, .stepTokens = 32, .queue = 16});
  std::vector<std::future<Outcome>> outcomes;
  std::vector<std::shared_ptr<Ticket>> tickets(8);
  for (int i = 0; i < 8; ++i) {
    outcomes.push_back(submit(s, prompt(i, 20 + i * 9), i == 7 ? 0 : 5 + i, &tickets[i]));
  }
  tickets[2]->cancel();
  for (int i = 0; i < 8; ++i) {
    auto o = outcomes[i].get();
    if (i == 7) {
      EXPECT_EQ(o.finish.reason, "length");  // to the end of the context
      EXPECT_EQ(o.finish.promptTokens + o.finish.completionTokens, 128u);
    } else if (i != 2) {
      EXPECT_EQ(o.finish.completionTokens, static_cast<std::size_t>(5 + i)) << i;
    }
  }
  waitIdle(s);
  auto stats = s.stats();
  EXPECT_EQ(stats.running, 0u);
  EXPECT_EQ(stats.waiting, 0u);
  EXPECT_EQ(stats.kvBlocksInUse, 0u);
  EXPECT_EQ(stats.kvBlocks, 3u * 8);
  EXPECT_LE(stats.kvBlocksCached, stats.kvBlocks);
}

TEST_F(SchedulerTest, ALongPromptDoesNotDelayRunningSequencesPastOneStep) {
  Scheduler s(*model_, *backend_, {.parallel = 2, .context = 2048, .stepTokens = 64, .queue = 4});
  auto running = submit(s, prompt(1, 10), 60);
  while (s.stats().generationTokens < 3) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto longPrompt = submit(s, prompt(2, 1500), 2);
  auto o = running.get();
  longPrompt.get();
  for (std::size_t i = 1; i < o.steps.size(); ++i) {
    EXPECT_EQ(o.steps[i] - o.steps[i - 1], 1u) << "piece " << i << " waited more than a step";
  }
}

TEST_F(SchedulerTest, BatchedAndCachedRunsGiveTheTokensOfARunAlone) {
  std::vector<std::vector<Token>> alone;
  {
    Scheduler s(*model_, *backend_, {.parallel = 1, .context = 512, .stepTokens = 512, .queue = 8});
    for (int i = 0; i < 6; ++i) {
      alone.push_back(submit(s, prompt(i % 3, 40), 10).get().tokens);
    }
  }
  Scheduler s(*model_, *backend_, {.parallel = 4, .context = 512, .stepTokens = 16, .queue = 8});
  std::vector<std::future<Outcome>> together;
  for (int i = 0; i < 6; ++i) {
    together.push_back(submit(s, prompt(i % 3, 40), 10));
  }
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(together[i].get().tokens, alone[i]) << i;
  }
  waitIdle(s);
  auto again = submit(s, prompt(0, 40), 10).get();
  EXPECT_EQ(again.tokens, alone[0]);
  EXPECT_EQ(again.finish.cachedTokens, 32u);  // two whole blocks of the 40-token prompt
  EXPECT_GT(s.stats().prefixHits, 0u);
}

TEST_F(SchedulerTest, ASmallPoolMakesRequestsWaitForBlocksWithoutChangingResults) {
  // 12 blocks: one context of 192 positions. Requests needing 5 blocks each run two at a time.
  std::vector<std::vector<Token>> alone;
  {
    Scheduler s(*model_, *backend_, {.parallel = 1, .context = 192, .stepTokens = 64, .queue = 8});
    for (int i = 0; i < 5; ++i) {
      alone.push_back(submit(s, prompt(10 + i, 60), 12).get().tokens);
    }
  }
  Scheduler s(*model_, *backend_,
              {.parallel = 4, .context = 192, .stepTokens = 64, .queue = 8, .kvBlocks = 12});
  std::vector<std::future<Outcome>> outcomes;
  for (int i = 0; i < 5; ++i) {
    outcomes.push_back(submit(s, prompt(10 + i, 60), 12));
  }
  std::size_t mostRunning = 0;
  while (!s.idle()) {
    auto stats = s.stats();
    mostRunning = std::max(mostRunning, stats.running);
    EXPECT_LE(stats.kvBlocksInUse, 12u);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(outcomes[i].get().tokens, alone[i]) << i;
  }
  EXPECT_LE(mostRunning, 2u);
  EXPECT_EQ(s.stats().kvBlocksInUse, 0u);
  EXPECT_THROW(Scheduler(*model_, *backend_, {.context = 192, .kvBlocks = 11}),
               std::invalid_argument);
}

TEST_F(SchedulerTest, AnF16CacheGivesTheTokensOfAnF32OneOnAShortRun) {
  auto run = [](engine::KvType type) {
    Scheduler s(*model_, *backend_,
                {.parallel = 2, .context = 128, .stepTokens = 64, .queue = 4, .kvType = type});
    return submit(s, prompt(3, 30), 8).get().tokens;
  };
  EXPECT_EQ(run(engine::KvType::F16), run(engine::KvType::F32));
}

// The text of one job (sampled with `sampling`), on a scheduler over a backend of `threads`.
std::pair<std::string, Finish> complete(const engine::Model& model, engine::SamplingParams sampling,
                                        unsigned threads, std::vector<std::string> stops = {},
                                        std::uint32_t maxTokens = 24) {
  auto backend = engine::makeCpuBackend(threads);
  Scheduler s(model, *backend, {.parallel = 1, .context = 128});
  std::string text;
  std::promise<Finish> done;
  Job job;
  job.prompt = model.tokenizer().encode("The box runs models", true, false);
  job.sampling = sampling;
  job.maxTokens = maxTokens;
  job.stops = std::move(stops);
  job.onPiece = [&text](Piece p) { text += p.text; };
  job.onFinish = [&done](const Finish& f) { done.set_value(f); };
  EXPECT_NE(s.submit(std::move(job)), nullptr);
  auto finish = done.get_future().get();
  return {text, finish};
}

TEST_F(SchedulerTest, GreedyIsDeterministicAndASeedRepeatsItsSampleAtAnyThreadCount) {
  auto [greedy, finish] = complete(*model_, {.temperature = 0, .seed = 1}, 1);
  EXPECT_GT(finish.completionTokens, 0u);
  EXPECT_EQ(finish.promptTokens,
            model_->tokenizer().encode("The box runs models", true, false).size());
  EXPECT_EQ(complete(*model_, {.temperature = 0, .seed = 2}, 3).first, greedy)
      << "the seed plays no part at temperature 0";
  auto sampled = complete(*model_, {.temperature = 1, .seed = 42}, 2).first;
  EXPECT_EQ(complete(*model_, {.temperature = 1, .seed = 42}, 1).first, sampled);
  std::set<std::string> others;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    others.insert(complete(*model_, {.temperature = 1, .seed = seed}, 2).first);
  }
  EXPECT_GT(others.size(), 1u) << "different seeds should give different samples";
}

TEST_F(SchedulerTest, StopStringsAndTheTokenLimitEndAJob) {
  auto full = complete(*model_, {.temperature = 0}, 1).first;
  ASSERT_GE(full.size(), 4u);
  auto stop = full.substr(2, 2);
  auto [text, finish] = complete(*model_, {.temperature = 0}, 1, {stop});
  EXPECT_EQ(finish.reason, "stop");
  EXPECT_EQ(text, full.substr(0, full.find(stop)));
  auto limited = complete(*model_, {.temperature = 0}, 1, {}, 3).second;
  EXPECT_EQ(limited.completionTokens, 3u);
  EXPECT_EQ(limited.reason, "length");
}

TEST_F(SchedulerTest, IgnoreEosGeneratesUpToTheLimitEvenWhenTheEndIsLikeliest) {
  Scheduler s(*model_, *backend_, {.parallel = 1, .context = 128});
  auto run = [&s](bool ignoreEos) {
    std::promise<Finish> done;
    Job job;
    job.prompt = prompt(3, 10);
    job.sampling.temperature = 0;
    job.maxTokens = 6;
    job.ignoreEos = ignoreEos;
    job.logitBias[model_->tokenizer().vocabulary().eos] = 100;  // the end, every time
    job.onPiece = [](Piece) {};
    job.onFinish = [&done](const Finish& f) { done.set_value(f); };
    EXPECT_NE(s.submit(std::move(job)), nullptr);
    return done.get_future().get();
  };
  auto ended = run(false);
  EXPECT_EQ(ended.reason, "stop");
  EXPECT_EQ(ended.completionTokens, 0u);
  auto ignored = run(true);
  EXPECT_EQ(ignored.reason, "length");
  EXPECT_EQ(ignored.completionTokens, 6u);
}

TEST(BlockManager, SharesPublishedPrefixesEvictsTheLeastRecentlyUsedAndNeverLeaks) {
  BlockManager blocks(4);
  std::vector<Token> a(32), b(32);
  std::iota(a.begin(), a.end(), 0);
  std::iota(b.begin(), b.end(), 100);
  std::vector<std::uint64_t> hashes;
  EXPECT_TRUE(blocks.match(a, hashes).empty());
  auto a0 = *blocks.allocate();
  auto a1 = *blocks.allocate();
  auto h0 = blocks.publish(a0, 0, std::span<const Token>(a).first(16));
  blocks.publish(a1, h0, std::span<const Token>(a).subspan(16, 16));
  EXPECT_EQ(blocks.cached(), 2u);
  // A second reader shares both; the same tokens after another prefix do not match.
  auto shared = blocks.match(a, hashes);
  EXPECT_EQ(shared, (std::vector<std::uint32_t>{a0, a1}));
  std::vector<Token> shifted(a.begin() + 16, a.end());
  EXPECT_TRUE(blocks.match(shifted, hashes).empty());
  EXPECT_EQ(blocks.inUse(), 2u);
  for (auto block : {a0, a1, a0, a1}) {
    blocks.release(block);
  }
  EXPECT_EQ(blocks.inUse(), 0u);
  EXPECT_EQ(blocks.available(), 4u);
  EXPECT_EQ(blocks.cached(), 2u);  // kept after their readers ended
  // b takes the two free blocks, then must evict: the least recently released (a0) goes first,
  // which also ends a1's prefix.
  std::vector<std::uint32_t> taken;
  for (int i = 0; i < 3; ++i) {
    taken.push_back(*blocks.allocate());
  }
  EXPECT_EQ(taken[2], a0);
  EXPECT_TRUE(blocks.match(a, hashes).empty());
  taken.push_back(*blocks.allocate());
  EXPECT_EQ(blocks.allocate(), std::nullopt);  // every block referenced
  // A block published twice under one prefix stays private and is freed at release.
  auto first = blocks.publish(taken[0], 0, std::span<const Token>(b).first(16));
  EXPECT_EQ(blocks.publish(taken[1], 0, std::span<const Token>(b).first(16)), first);
  EXPECT_EQ(blocks.cached(), 1u);
  for (auto block : taken) {
    blocks.release(block);
  }
  EXPECT_EQ(blocks.available(), 4u);
  EXPECT_EQ(blocks.cached(), 1u);
  EXPECT_EQ(blocks.match(b, hashes).size(), 1u);
}

TEST_F(SchedulerTest, AFullQueueRefusesAndStopAcceptingRefuses) {
  Scheduler s(*model_, *backend_, {.parallel = 1, .context = 256, .stepTokens = 64, .queue = 1});
  std::vector<std::future<Outcome>> kept;
  int refused = 0;
  for (int i = 0; i < 6; ++i) {
    Job job;
    job.prompt = prompt(i, 30);
    job.maxTokens = 50;
    job.onPiece = [](Piece) {};
    job.onFinish = [](const Finish&) {};
    if (!s.submit(std::move(job))) {
      ++refused;
    }
  }
  EXPECT_GE(refused, 4);
  s.stopAccepting();
  Job late;
  late.prompt = prompt(9, 5);
  late.onPiece = [](Piece) {};
  late.onFinish = [](const Finish&) {};
  EXPECT_EQ(s.submit(std::move(late)), nullptr);
}

}  // namespace
}  // namespace aibox::server
