#include <boost/program_options/value_semantic.hpp>
#include <sstream>

#include "agent/models/models.hpp"

namespace po = boost::program_options;

namespace aibox::agent::models {

void addSettings(po::options_description& d, Settings& s) {
  // clang-format off
  d.add_options()
    ("models.import_dirs", po::value<std::string>()->default_value("/media,/mnt,/srv")
        ->notifier([&s](const std::string& v) {
          s.importDirs.clear();
          std::istringstream in(v);
          for (std::string item; std::getline(in, item, ',');) {
            auto first = item.find_first_not_of(" \t");
            if (first == std::string::npos) {
              continue;
            }
            std::filesystem::path dir(item.substr(first, item.find_last_not_of(" \t") - first + 1));
            if (!dir.is_absolute()) {
              throw config::InvalidValue("models.import_dirs", "'" + dir.string() + "' is not an absolute path");
            }
            s.importDirs.push_back(dir);
          }
        }),
        "comma-separated directories that local model imports may come from (USB and NFS mounts)")
    ("models.reserve_bytes", po::value(&s.reserveBytes)->default_value(s.reserveBytes),
        "free space an import must leave on the model store's disk")
    ("models.import_threads", po::value(&s.importThreads)->default_value(s.importThreads)
        ->notifier([](int v) {
          if (v < 1 || v > 16) {
            throw config::InvalidValue("models.import_threads", "must be between 1 and 16");
          }
        }),
        "model imports and verifications that run at once")
    ("models.ca_bundle", po::value<std::string>()->notifier([&s](const std::string& v) {
          if (!v.empty()) {
            s.caBundle = v;
          }
        }),
        "PEM file of the CAs trusted for HTTPS imports (a local mirror's); default: the system's")
    ("models.proxy", po::value(&s.proxy)->default_value(""),
        "proxy for HTTP(S) imports, e.g. http://proxy.example:3128; default: $https_proxy")
    ("models.download_retries", po::value(&s.downloadRetries)->default_value(s.downloadRetries)
        ->notifier([](int v) {
          if (v < 0 || v > 100) {
            throw config::InvalidValue("models.download_retries", "must be between 0 and 100");
          }
        }),
        "failed attempts in a row before an HTTP import gives up (each resumes where it stopped)");
  // clang-format on
}

}  // namespace aibox::agent::models
