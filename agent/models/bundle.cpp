// Model bundles for air-gapped transfer: a POSIX ustar archive holding manifest.json (the
// model's name, tag and every file with its SHA-256 and size), then each file's content as
// blobs/sha256-<hex>. Sizes past 8 GiB use the base-256 size field that GNU tar reads.
#include <fcntl.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cstring>
#include <system_error>

#include "agent/models/models.hpp"
#include "common/json/json.hpp"

namespace aibox::agent::models {
namespace {

constexpr std::size_t kBlock = 512;
constexpr std::uint64_t kMaxManifest = 1 << 20;

std::uint64_t padded(std::uint64_t n) {
  return (n + kBlock - 1) / kBlock * kBlock;
}

void octal(char* field, std::size_t width, std::uint64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

std::string header(const std::string& name, std::uint64_t size) {
  std::string block(kBlock, '\0');
  std::memcpy(block.data(), name.data(), std::min<std::size_t>(name.size(), 99));
  octal(&block[100], 8, 0444);
  octal(&block[108], 8, 0);
  octal(&block[116], 8, 0);
  if (size < 077777777777ULL) {
    octal(&block[124], 12, size);
  } else {  // base-256: a set top bit, then the size big-endian
    block[124] = static_cast<char>(0x80);
    for (int i = 0; i < 8; ++i) {
      block[135 - i] = static_cast<char>((size >> (8 * i)) & 0xff);
    }
  }
  octal(&block[136], 12, 0);
  block[156] = '0';
  std::memcpy(&block[257], "ustar", 6);
  std::memcpy(&block[263], "00", 2);
  std::memset(&block[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : block) {
    sum += c;
  }
  std::snprintf(&block[148], 8, "%06o", sum);
  block[155] = ' ';
  return block;
}

std::string manifestJson(const ModelRow& model) {
  boost::json::array files;
  for (const auto& f : model.files) {
    files.push_back({{"path", f.path}, {"sha256", f.digest}, {"size", f.size}});
  }
  return json::serialize(boost::json::object{{"format", "aibox-model-bundle"},
                                             {"version", 1},
                                             {"name", model.name},
                                             {"tag", model.tag},
                                             {"files", std::move(files)}});
}

// One piece of the archive: literal bytes, or a blob's content.
struct Segment {
  std::string bytes;
  std::filesystem::path file;
  std::uint64_t size = 0;
};

std::uint64_t readOctal(const char* field, std::size_t width) {
  if ((static_cast<unsigned char>(field[0]) & 0x80) != 0) {
    std::uint64_t v = 0;
    for (std::size_t i = 1; i < width; ++i) {
      v = (v << 8) | static_cast<unsigned char>(field[i]);
    }
    return v;
  }
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width && field[i] != '\0' && field[i] != ' '; ++i) {
    if (field[i] < '0' || field[i] > '7') {
      throw std::runtime_error("the bundle is not a valid tar archive (bad number field)");
    }
    v = v * 8 + static_cast<std::uint64_t>(field[i] - '0');
  }
  return v;
}

void readExactly(int fd, char* out, std::size_t n) {
  while (n > 0) {
    ssize_t got = ::read(fd, out, n);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      throw std::system_error(errno, std::generic_category(), "cannot read the bundle");
    }
    if (got == 0) {
      throw std::runtime_error("the bundle is truncated: copy it again");
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

struct Entry {
  std::string name;
  std::uint64_t size = 0;
};

// The next member's header. Only regular files with plain relative names are accepted: an
// absolute path, "..", a link, a device or any other special entry is refused.
Entry nextEntry(int fd) {
  std::array<char, kBlock> block{};
  readExactly(fd, block.data(), block.size());
  if (std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; })) {
    throw std::runtime_error("the bundle ends before all the files of its manifest");
  }
  unsigned sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(block[i]);
  }
  if (sum != readOctal(&block[148], 8)) {
    throw std::runtime_error("the bundle is not a valid tar archive (bad header checksum)");
  }
  Entry e;
  e.name = std::string(block.data(), strnlen(block.data(), 100));
  std::string prefix(&block[345], strnlen(&block[345], 155));
  if (std::memcmp(&block[257], "ustar", 5) == 0 && !prefix.empty()) {
    e.name = prefix + "/" + e.name;
  }
  char type = block[156];
  if (type != '0' && type != '\0') {
    throw std::runtime_error("the bundle holds '" + e.name +
                             "', which is a link, a device or another special entry: refused");
  }
  if (e.name.starts_with('/') || e.name.find("..") != std::string::npos) {
    throw std::runtime_error("the bundle holds the path '" + e.name +
                             "', which points outside it: refused");
  }
  e.size = readOctal(&block[124], 12);
  return e;
}

void skipPadding(int fd, std::uint64_t size) {
  std::array<char, kBlock> pad{};
  readExactly(fd, pad.data(), static_cast<std::size_t>(padded(size) - size));
}

}  // namespace

std::uint64_t bundleSize(const ModelRow& model) {
  std::uint64_t size = kBlock + padded(manifestJson(model).size());
  for (const auto& f : model.files) {
    size += kBlock + padded(f.size);
  }
  return size + 2 * kBlock;
}

std::function<bool(std::string&, std::size_t)> bundleSource(const Store& store,
                                                            const ModelRow& model) {
  auto segments = std::make_shared<std::vector<Segment>>();
  auto manifest = manifestJson(model);
  segments->push_back({header("manifest.json", manifest.size()) + manifest +
                           std::string(padded(manifest.size()) - manifest.size(), '\0'),
                       {},
                       0});
  for (const auto& f : model.files) {
    segments->push_back({header("blobs/sha256-" + f.digest, f.size), {}, 0});
    segments->push_back({{}, store.blob(f.digest), f.size});
    segments->push_back({std::string(padded(f.size) - f.size, '\0'), {}, 0});
  }
  segments->push_back({std::string(2 * kBlock, '\0'), {}, 0});
  struct Cursor {
    std::size_t segment = 0;
    std::uint64_t offset = 0;
    int fd = -1;
    ~Cursor() {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  };
  auto cursor = std::make_shared<Cursor>();
  return [segments, cursor](std::string& out, std::size_t max) {
    while (out.size() < max && cursor->segment < segments->size()) {
      auto& s = (*segments)[cursor->segment];
      std::size_t room = max - out.size();
      if (s.file.empty()) {
        auto n = std::min<std::size_t>(room, s.bytes.size() - cursor->offset);
        out.append(s.bytes, cursor->offset, n);
        cursor->offset += n;
        if (cursor->offset == s.bytes.size()) {
          ++cursor->segment;
          cursor->offset = 0;
        }
        continue;
      }
      if (cursor->fd < 0) {
        cursor->fd = ::open(s.file.c_str(), O_RDONLY | O_CLOEXEC);
        if (cursor->fd < 0) {
          throw std::system_error(errno, std::generic_category(), "cannot open " + s.file.string());
        }
      }
      auto want = static_cast<std::size_t>(std::min<std::uint64_t>(room, s.size - cursor->offset));
      auto at = out.size();
      out.resize(at + want);
      ssize_t got = ::pread(cursor->fd, out.data() + at, want, static_cast<off_t>(cursor->offset));
      if (got <= 0) {
        throw std::runtime_error("blob " + s.file.string() + " ends early: verify the model");
      }
      out.resize(at + static_cast<std::size_t>(got));
      cursor->offset += static_cast<std::uint64_t>(got);
      if (cursor->offset == s.size) {
        ::close(cursor->fd);
        cursor->fd = -1;
        ++cursor->segment;
        cursor->offset = 0;
      }
    }
    return cursor->segment < segments->size();
  };
}

std::vector<BundleFile> openBundle(const std::filesystem::path& path, std::shared_ptr<int>& fdOut) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "cannot open " + path.string());
  }
  auto shared = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  auto first = nextEntry(fd);
  if (first.name != "manifest.json" || first.size > kMaxManifest) {
    throw std::runtime_error("not an aibox model bundle: it must start with manifest.json");
  }
  std::string text(first.size, '\0');
  readExactly(fd, text.data(), text.size());
  skipPadding(fd, first.size);
  boost::system::error_code ec;
  auto manifest = boost::json::parse(text, ec);
  const boost::json::array* files = nullptr;
  if (!ec && manifest.is_object() && manifest.as_object().contains("files") &&
      manifest.at("files").is_array()) {
    files = &manifest.at("files").as_array();
  }
  if (files == nullptr || files->empty()) {
    throw std::runtime_error("the bundle's manifest.json is not valid: export the model again");
  }
  std::vector<BundleFile> out;
  for (const auto& v : *files) {
    const auto* o = v.if_object();
    if (o == nullptr || !o->contains("path") || !o->at("path").is_string() ||
        !o->contains("sha256") || !o->at("sha256").is_string() || !o->contains("size") ||
        !o->at("size").is_number()) {
      throw std::runtime_error(
          "the bundle's manifest.json lists a file without path, sha256 "
          "and size: export the model again");
    }
    BundleFile f;
    f.path = std::string(o->at("path").as_string());
    f.digest = std::string(o->at("sha256").as_string());
    f.size = o->at("size").to_number<std::uint64_t>();
    if (f.path.empty() || f.path.starts_with('/') || f.path.find("..") != std::string::npos ||
        !isDigest(f.digest)) {
      throw std::runtime_error("the bundle's manifest.json names '" + f.path +
                               "' with a bad path or digest: refused");
    }
    out.push_back(f);
  }
  fdOut = shared;
  return out;
}

void copyBundleEntry(int fd, const BundleFile& file, HashingWriter& writer,
                     const std::atomic<bool>& cancel, std::atomic<std::uint64_t>& done) {
  auto entry = nextEntry(fd);
  if (entry.name != "blobs/sha256-" + file.digest || entry.size != file.size) {
    throw std::runtime_error("the bundle holds '" + entry.name + "' (" +
                             std::to_string(entry.size) + " bytes) where its manifest says " +
                             "blobs/sha256-" + file.digest + " (" + std::to_string(file.size) +
                             " bytes): export the model again");
  }
  std::uint64_t left = entry.size;
  while (left > 0) {
    if (cancel) {
      throw std::runtime_error("cancelled");
    }
    auto room = writer.buffer();
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(room.size(), left));
    readExactly(fd, room.data(), n);
    writer.commit(n);
    done += n;
    left -= n;
  }
  skipPadding(fd, entry.size);
}

}  // namespace aibox::agent::models
