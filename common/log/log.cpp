#include "common/log/log.hpp"

#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>
#include <vector>

namespace aibox::log {
namespace {

std::atomic<Level> gLevel{Level::info};

// systemd sets JOURNAL_STREAM to "<dev>:<inode>" of the stream it connected to stderr.
bool stderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");  // NOLINT(concurrency-mt-unsafe)
  if (stream == nullptr) {
    return false;
  }
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) {
    return false;
  }
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) {  // NOLINT(cert-err34-c)
    return false;
  }
  return dev == st.st_dev && ino == st.st_ino;
}

const bool kToJournal = stderrIsJournal();

int priority(Level level) {
  switch (level) {
    case Level::debug:
      return LOG_DEBUG;
    case Level::info:
      return LOG_INFO;
    case Level::warning:
      return LOG_WARNING;
    case Level::error:
      return LOG_ERR;
  }
  return LOG_INFO;
}

std::string_view name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warning:
      return "warning";
    case Level::error:
      return "error";
  }
  return "info";
}

std::string journalKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - 'a' + 'A');
    } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
      out += c;
    } else {
      out += '_';
    }
  }
  return out;
}

void toJournal(Level level, std::string_view message, std::initializer_list<Field> fields) {
  std::vector<std::string> entries;
  entries.reserve(fields.size() + 2);
  entries.push_back("MESSAGE=" + std::string(message));
  entries.push_back("PRIORITY=" + std::to_string(priority(level)));
  for (const auto& f : fields) {
    entries.push_back(journalKey(f.key) + "=" + f.value);
  }
  std::vector<iovec> iov;
  iov.reserve(entries.size());
  for (auto& e : entries) {
    iov.push_back({e.data(), e.size()});
  }
  sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

bool needsQuotes(std::string_view v) {
  return v.empty() || v.find_first_of(" \t\"=") != std::string_view::npos;
}

void toStderr(Level level, std::string_view message, std::initializer_list<Field> fields) {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  std::array<char, 32> stamp{};
  std::size_t length = std::strftime(stamp.data(), stamp.size(), "%FT%T", &utc);
  std::string fraction = std::to_string(1000 + millis.count()).substr(1);  // zero-padded
  std::string line =
      std::string(stamp.data(), length) + "." + fraction + "Z " + std::string(name(level)) + " ";
  line += message;
  for (const auto& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    if (needsQuotes(f.value)) {
      line += '"' + f.value + '"';
    } else {
      line += f.value;
    }
  }
  line += '\n';
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (std::fwrite(line.data(), 1, line.size(), stderr) != line.size()) {
    return;  // nowhere left to report a failing stderr
  }
}

}  // namespace

std::optional<Level> parseLevel(std::string_view n) {
  for (Level l : {Level::debug, Level::info, Level::warning, Level::error}) {
    if (n == name(l)) {
      return l;
    }
  }
  return std::nullopt;
}

void setLevel(Level level) {
  gLevel = level;
}

bool enabled(Level level) {
  return level >= gLevel.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) {
    return;
  }
  if (kToJournal) {
    toJournal(level, message, fields);
  } else {
    toStderr(level, message, fields);
  }
}

}  // namespace aibox::log
