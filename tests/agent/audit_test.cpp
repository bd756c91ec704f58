#include "agent/audit/audit.hpp"

#include <gtest/gtest.h>

#include "agent/migrations.hpp"
#include "tests/support/support.hpp"

namespace aibox::agent::audit {
namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { db::migrate(db, migrations()); }

  void add(const std::string& time, const std::string& actor) {
    Entry e{.time = time,
            .actor = actor,
            .source = "10.0.0.1",
            .action = "POST /api/v1/users",
            .target = "/api/v1/users",
            .result = 201,
            .details = R"({"user":"x"})"};
    db.transaction([&e](db::Database& tx) { append(tx, e); });
  }

  std::vector<Problem> problems() { return verify(db, archives).problems; }

  std::string joined() {
    std::string out;
    for (const auto& p : problems()) {
      out += p.where + ": " + p.what + "\n";
    }
    return out;
  }

  test::TempDir dir;
  std::filesystem::path archives = dir.path() / "audit";
  db::Database db = db::Database::open(dir.path() / "aibox.db");
};

TEST_F(AuditTest, AnIntactChainVerifies) {
  for (int i = 0; i < 5; ++i) {
    add("2026-11-01T10:00:0" + std::to_string(i) + ".000Z", "user:a");
  }
  auto v = verify(db, archives);
  EXPECT_EQ(v.rows, 5);
  EXPECT_TRUE(v.problems.empty()) << joined();
  auto rows = query(db, {.limit = 2});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, 5) << "newest first";
  EXPECT_EQ(rows[0].prevHash, query(db, {.before = 5, .limit = 1})[0].hash);
  EXPECT_THROW(db.exec("UPDATE audit_log SET actor = 'x'"), db::Error) << "append-only";
}

TEST_F(AuditTest, ModifiedDeletedAndReplacedRowsAreFound) {
  for (int i = 0; i < 6; ++i) {
    add("2026-11-01T10:00:0" + std::to_string(i) + ".000Z", "user:a");
  }
  db.exec("DROP TRIGGER audit_log_append_only");  // what an attacker with the file can do
  db.exec("UPDATE audit_log SET actor = 'user:mallory' WHERE id = 2");
  EXPECT_NE(joined().find("row 2: its content does not match its hash (modified)"),
            std::string::npos)
      << joined();

  db.exec("UPDATE audit_log SET actor = 'user:a' WHERE id = 2");
  db.exec("DELETE FROM audit_log WHERE id = 4");
  EXPECT_NE(joined().find("row 5: rows 4 to 4 are missing (deleted)"), std::string::npos)
      << joined();

  // Row 4 forged back with a hash that matches its own (forged) content.
  Entry forged{.id = 4,
               .time = "2026-11-01T10:00:03.000Z",
               .actor = "user:mallory",
               .source = "x",
               .action = "POST /x",
               .target = "/x",
               .result = 200,
               .details = "{}",
               .prevHash = query(db, {.before = 4, .limit = 1})[0].hash};
  forged.hash = entryHash(forged);
  db.prepare(
        "INSERT INTO audit_log(id, time, actor, source, action, target, result, details, "
        "prev_hash, "
        "hash) VALUES (4, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .bind(1, forged.time)
      .bind(2, forged.actor)
      .bind(3, forged.source)
      .bind(4, forged.action)
      .bind(5, forged.target)
      .bind(6, forged.result)
      .bind(7, forged.details)
      .bind(8, forged.prevHash)
      .bind(9, forged.hash)
      .step();
  EXPECT_NE(joined().find("row 5: does not follow the row before it"), std::string::npos)
      << joined();

  db.exec("DELETE FROM audit_log WHERE id >= 4");
  EXPECT_NE(joined().find("end: rows 4 to 6 are missing (deleted)"), std::string::npos) << joined();
}

TEST_F(AuditTest, ArchivesKeepTheChainAcrossTheCut) {
  add("2026-08-30T10:00:00.000Z", "user:a");
  add("2026-09-02T10:00:00.000Z", "user:b");
  add("2026-09-03T10:00:00.000Z", "user:c");
  add("2026-11-01T10:00:00.000Z", "user:d");
  EXPECT_EQ(archive(db, archives, "2026-10-01T00:00:00.000Z"), 3);
  EXPECT_TRUE(std::filesystem::exists(archives / "audit-2026-08.jsonl.gz"));
  EXPECT_TRUE(std::filesystem::exists(archives / "audit-2026-09.jsonl.gz"));
  EXPECT_EQ(query(db, {}).size(), 1u);
  add("2026-11-02T10:00:00.000Z", "user:e");
  auto v = verify(db, archives);
  EXPECT_EQ(v.archives, 2);
  EXPECT_EQ(v.rows, 2);
  EXPECT_TRUE(v.problems.empty()) << joined();

  // Everything archived: the next row still chains on from the anchor.
  EXPECT_EQ(archive(db, archives, "2026-12-01T00:00:00.000Z"), 2);
  add("2026-12-02T10:00:00.000Z", "user:f");
  EXPECT_EQ(query(db, {})[0].id, 6);
  EXPECT_TRUE(problems().empty()) << joined();
  EXPECT_EQ(archive(db, archives, "2026-01-01T00:00:00.000Z"), 0);

  std::filesystem::remove(archives / "audit-2026-09.jsonl.gz");
  EXPECT_NE(joined().find("audit-2026-11.jsonl.gz line 1: rows 2 to 3 are missing"),
            std::string::npos)
      << joined();
  std::filesystem::remove(archives / "audit-2026-11.jsonl.gz");
  EXPECT_NE(joined().find("do not end at the anchor"), std::string::npos) << joined();
}

TEST_F(AuditTest, ATamperedArchiveIsFound) {
  add("2026-08-30T10:00:00.000Z", "user:a");
  add("2026-08-31T10:00:00.000Z", "user:b");
  archive(db, archives, "2026-10-01T00:00:00.000Z");
  auto file = archives / "audit-2026-08.jsonl.gz";
  test::writeFile(file, "not gzip at all");
  EXPECT_NE(joined().find("audit-2026-08.jsonl.gz: cannot be read"), std::string::npos) << joined();
}

}  // namespace
}  // namespace aibox::agent::audit
