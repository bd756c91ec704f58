// The built-in training text for test vocabularies, written for aibox: varied enough that a
// vocabulary learned on it splits English, Chinese, numbers and code into sensible pieces.

#include "runtime/text/tokenizer.hpp"

namespace aibox::text {

std::string_view builtinCorpus() {
  return R"corpus(The small box under the desk hums quietly. It runs the models, keeps the logs, and tells us when a fan is about to fail. Nobody thinks about it until the power goes out; then everyone asks where the box went.

When you ask the assistant a question, it reads your words as tokens. A token can be a whole word, part of a word, a single letter, or even one byte of a character it has never seen before. That's why the same sentence can cost a different number of tokens in different models.

We'll start with the basics. First, check that the service is running. Second, look at the temperature of each GPU. Third, read the last ten lines of the journal. If you're still unsure, don't restart anything yet: write down what you saw, and ask someone who has done it before. It's slower, but it's safer.

They've moved the meeting to Thursday at 3:30 PM. I'm bringing the slides; she'll bring the numbers. We'd like the review to take less than 45 minutes, so please read the notes beforehand. THE DEADLINE IS FRIDAY. Isn't that soon? It is, but we've done harder things with less time.

A good error message says what went wrong and what to do next. "File not found" is not enough. "Model file truncated at 1.2 GiB of 4.0 GiB: re-run the import" is much better, because the reader knows both the cause and the fix.

Weather report: light rain in the morning, clearing by noon. Highs near 21 degrees, lows around 9. Winds from the northwest at 15 to 25 km/h. Tomorrow looks brighter, with a 10% chance of showers after dark.

Recipe for a quick soup: chop two onions, three carrots and a handful of celery. Warm a spoon of oil in a pot, add the vegetables, and stir for five minutes. Pour in one litre of water, add salt, pepper and a bay leaf, then simmer for 25 minutes. Serve hot, with bread.

Notes from the lab: the first prototype overheated within an hour, so we added a second fan and moved the power supply to the back. The second prototype ran for three days without a single error. Our measurements showed the CPU at 62 degrees under load and 38 degrees when idle. Memory use stayed below 70 percent, except during model imports, when the page cache filled the rest.

How to read a log line: the timestamp comes first, then the level (INFO, WARN or ERROR), then the component, then the message. For example, "2025-03-02T08:15:44Z WARN hwmon fan2 below 500 rpm for 30 s" means the second fan has been slow for half a minute. A single warning is rarely a problem; ten of them in a row usually are.

Questions people often ask: Why is the first answer slow? Because the model must be read from disk into memory. Why does the answer stop in the middle of a sentence? Because it reached the token limit you set. Can I run two models at once? Yes, if there is enough memory for both; otherwise the older one is unloaded first.

Short story: Mara kept a notebook of every bug she fixed. After a year, the notebook had 214 entries. Reading them again, she noticed that most bugs came from the same three places: time zones, file paths with spaces, and numbers that were too large to fit. She wrote three small tests, one for each, and the notebook grew much more slowly after that.

小盒子放在桌子下面，安静地工作。它负责运行模型、保存日志，并在风扇快要坏的时候提醒我们。平时没有人注意它，直到停电的那一天，大家才开始问它去哪儿了。

当你向助手提问时，它会把你的话切成一个个词元。一个词元可能是一个完整的词，也可能只是半个词，甚至只是某个字的一个字节。所以同一句话在不同的模型里，长度并不一样。

今天早上下了一点小雨，中午以后天就晴了。最高气温二十一度，最低气温九度。明天天气更好，适合出去走走。我们打算周六去公园散步，顺便买一些水果和蔬菜。

做一碗简单的汤：先把两个洋葱、三根胡萝卜切成小块，锅里放一点油，把菜炒五分钟，再加一升水、少许盐和胡椒，小火煮二十五分钟就可以了。

学习一门新的编程语言，最好的办法是每天写一点代码。先读懂别人的例子，再自己动手改一改，遇到错误不要着急，仔细看看错误信息，它通常会告诉你问题在哪里。

我们的目标是让每个人都能在自己的机器上运行大模型：安装简单，运行稳定，出了问题也容易排查。

实验记录：第一台样机运行不到一个小时就过热了，于是我们又加了一个风扇，并把电源挪到了机箱后面。第二台样机连续运行了三天，没有出现任何错误。满载时处理器温度是六十二度，空闲时是三十八度。

如何阅读日志：每一行先是时间，然后是级别，接着是模块名称，最后是具体内容。偶尔出现一条警告通常没有关系，但如果连续出现十条，就应该认真检查一下了。

常见问题：为什么第一次回答比较慢？因为模型需要先从硬盘读进内存。为什么回答会在句子中间停下来？因为已经达到了你设置的长度上限。能不能同时运行两个模型？只要内存足够就可以，否则系统会先卸载较早的那个模型。

小故事：小林有一个笔记本，专门记录自己修过的每一个错误。一年以后，本子上已经写了两百多条。重新翻看时，她发现大部分问题都来自同样的三个地方：时区、带空格的文件路径，以及放不下的大数字。于是她为每一种情况写了一个小测试，从那以后，笔记本就很少再添新内容了。

春天的早晨，河边的柳树刚刚发芽，空气里有泥土和青草的味道。老人们在树下下棋，孩子们沿着小路跑来跑去，远处传来卖豆浆和油条的叫卖声。

Numbers and dates: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 42, 100, 256, 1024, 4096, 65536, 3.14159, 2.71828, -273.15, 1e-5, 6.02e23, 0x7F, 0b1010, 99.9%, $12.50, EUR 8,40, 2024-05-17, 2025/01/31, 12:45:07, +1 555 0100, version 1.2.3, 1,000,000 and 3/4 of a cup.

In 1969 people walked on the moon; in 1989 the web was proposed; by 2007 phones had touch screens. Between 2010 and 2020, the number of connected devices grew from about 12 billion to more than 30 billion.

Code samples:

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
    std::vector<int> values = {3, 1, 4, 1, 5, 9, 2, 6};
    int total = 0;
    for (int value : values) {
        total += value;
    }
    std::printf("total = %d\n", total);
    return argc > 1 ? 1 : 0;
}

def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    result = [0, 1]
    while len(result) < n:
        result.append(result[-1] + result[-2])
    return result[:n]

if __name__ == "__main__":
    print(fibonacci(10))

{"model": "tiny-test", "layers": 2, "heads": 4, "context": 512, "rope_theta": 10000.0, "tags": ["test", "cpu"], "enabled": true, "owner": null}

$ systemctl status aibox-agent
$ journalctl -u aibox-agent --since "10 min ago" | grep -i error
$ curl -s http://localhost:8080/api/v1/models | jq '.[0].name'

SELECT name, size_bytes FROM models WHERE state = 'ready' ORDER BY size_bytes DESC LIMIT 5;

# config.yaml
runtime:
  threads: 8
  context_length: 4096
  chat_template: auto
server:
  listen: "127.0.0.1:8443"
  max_body_mb: 16

| model        | size   | speed (tok/s) |
|--------------|--------|---------------|
| tiny-test    | 2 MiB  | 950.0         |
| small-7b-q4  | 4.1 GiB| 11.3          |

template <typename T>
T clamp(T value, T low, T high) {
    return value < low ? low : (value > high ? high : value);
}

async function fetchModels(url) {
  const response = await fetch(`${url}/api/v1/models`);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()).map((m) => m.name);
}

Punctuation and symbols: (round) [square] {curly} <angle> "double" 'single' `back` -- em — dash ... ellipsis … ; colon: question? exclamation! a/b a\b a|b a&b a*b a^b a~b a@b #tag 50% 1+1=2 x<y x>y x<=y x>=y x!=y a->b a=>b :: -> ++ -- && || << >> ... ___ *** ###

中文标点：，。、；：？！“引号”‘单引号’（括号）【方括号】《书名号》……——

Emoji and symbols: 🙂 😀 👍 🚀 ✅ ❌ ⚠️ ❤️ 🌧️ ☀️ 🍜 🐱 👩‍💻 🇨🇳 🇺🇸 — arrows → ← ↑ ↓, math ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ π µ °C, currency € £ ¥ ₹.

Mixed text: The API returns 200 OK when the model is ready, 404 when it is missing, and 503 while it is still loading. 模型加载完成后，接口返回 200；模型不存在时返回 404。Use --chat-template=chatml to override the detected template.

	Tabs	and    several   spaces    are also text.
Line one
Line two

Line four after an empty line.
   Indented line with trailing spaces   
)corpus";
}

}  // namespace aibox::text
