// aibox-runtime as a technician runs it: make a model, show it, generate from it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "tests/support/files.hpp"

namespace {

struct Outcome {
  int status = -1;
  std::string output;  // stdout and stderr
};

Outcome run(const std::string& arguments) {
  std::string command = std::string(AIBOX_RUNTIME_BIN) + " " + arguments + " 2>&1";
  Outcome result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return result;
  }
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

class RuntimeCli : public testing::Test {
 protected:
  std::string model(const std::string& arch) {
    auto path = dir_.path() / (arch + ".gguf");
    if (!std::filesystem::exists(path)) {
      Outcome made = run("make-test-model --arch " + arch +
                         " --type q8_0 --layers 2 --dim 256 --ff 512 " + path.string());
      EXPECT_EQ(made.status, 0) << made.output;
    }
    return path.string();
  }
  aibox::test::TempDir dir_;
};

TEST_F(RuntimeCli, GeneratesFromAPromptAndReportsSpeed) {
  Outcome generated = run("generate --model " + model("llama") +
                          " --prompt 'The box' --max-tokens 8 --seed 3 --threads 2");
  ASSERT_EQ(generated.status, 0) << generated.output;
  EXPECT_NE(generated.output.find("loaded aibox test llama q8_0"), std::string::npos)
      << generated.output;
  EXPECT_NE(generated.output.find("prompt: "), std::string::npos) << generated.output;
  EXPECT_NE(generated.output.find("tokens/s; generation: "), std::string::npos) << generated.output;
  // The same seed gives the same text, whatever the thread count.
  auto text = [](const std::string& output) {
    auto begin = output.find('\n') + 1;
    return output.substr(begin, output.find("prompt: ") - begin);
  };
  Outcome again = run("generate --model " + model("llama") +
                      " --prompt 'The box' --max-tokens 8 --seed 3 --threads 1");
  EXPECT_EQ(text(again.output), text(generated.output));
}

TEST_F(RuntimeCli, GeneratesFromAChatWithTheModelsTemplate) {
  for (std::string arch : {"llama", "qwen2"}) {
    Outcome generated =
        run("generate --model " + model(arch) +
            " --chat '[{\"role\":\"system\",\"content\":\"Be brief.\"},"
            "{\"role\":\"user\",\"content\":\"你好\"}]' --max-tokens 4 --temperature 0");
    EXPECT_EQ(generated.status, 0) << arch << ": " << generated.output;
  }
  Outcome forced =
      run("generate --model " + model("qwen2") +
          " --chat '[{\"role\":\"user\",\"content\":\"Hi\"}]' --chat-template nonesuch");
  EXPECT_NE(forced.status, 0);
  EXPECT_NE(forced.output.find("chatml"), std::string::npos) << forced.output;
}

TEST_F(RuntimeCli, InfoShowsWhatTheEngineSees) {
  Outcome info = run("info --json " + model("qwen2"));
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_NE(info.output.find("\"architecture\":\"qwen2\""), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("\"chat_template\":\"chatml\""), std::string::npos) << info.output;
}

TEST_F(RuntimeCli, BadArgumentsSayWhatToDo) {
  Outcome noModel = run("generate --prompt hi");
  EXPECT_EQ(noModel.status, 2) << noModel.output;
  Outcome both = run("generate --model x.gguf --prompt hi --chat '[]'");
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.output.find("either --prompt or --chat"), std::string::npos) << both.output;
  Outcome badType = run("make-test-model --type q5_k " + (dir_.path() / "x.gguf").string());
  EXPECT_EQ(badType.status, 2);
  EXPECT_NE(badType.output.find("q4_k_m"), std::string::npos) << badType.output;
  Outcome missing =
      run("generate --model " + (dir_.path() / "absent.gguf").string() + " --prompt hi");
  EXPECT_EQ(missing.status, 1);
  Outcome badChat = run("generate --model " + model("llama") + " --chat '{\"role\":1}'");
  EXPECT_EQ(badChat.status, 2);
  EXPECT_NE(badChat.output.find("JSON array"), std::string::npos) << badChat.output;
  Outcome badSampling = run("generate --model " + model("llama") + " --prompt hi --top-k=-1");
  EXPECT_EQ(badSampling.status, 2);
  EXPECT_NE(badSampling.output.find("--top-k must be"), std::string::npos) << badSampling.output;
  Outcome bigContext = run("generate --model " + model("llama") + " --prompt hi --context 999999");
  EXPECT_EQ(bigContext.status, 2);
  EXPECT_NE(bigContext.output.find("trained for"), std::string::npos) << bigContext.output;
  EXPECT_EQ(run("--help").status, 0);
  EXPECT_EQ(run("generate --help").status, 0);
  EXPECT_EQ(run("nonesuch").status, 2);
}

}  // namespace
