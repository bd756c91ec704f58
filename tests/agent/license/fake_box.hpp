#pragma once
// A fake machine under a root for the license fingerprint: DMI ids, an NVMe boot disk (mount
// table, /sys/dev/block link, serial) and an onboard NIC; plus license issuing with the test
// vendor key, as the vendor's tool does.

#include <boost/json/object.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace aibox::test {

struct FakeBox {
  std::string productUuid = "4c4c4544-0042-3510-8052-b4c04f4e3332";
  std::string boardSerial = "CN7475142U0123";
  std::string diskSerial = "S4EWNX0R123456";
  std::string mac = "3c:ec:ef:12:34:56";
  // Writes the files under `root` (again after a change: a replaced part).
  void write(const std::filesystem::path& root) const;
};

// The test vendor's private key (tests/support/license/test-vendor.key).
std::string testVendorKey();
// A signed license file for `components`, with `fields` of the request over the defaults
// (id, customer, days 365, grace 14, at `now`).
std::string issueLicense(const std::vector<std::string>& components,
                         const boost::json::object& fields = {}, std::int64_t now = 0,
                         const std::string& key = testVendorKey());
std::int64_t unixNow();

}  // namespace aibox::test
