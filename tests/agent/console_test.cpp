// The web console's path rules, types and cache validators.
#include "agent/console/console.hpp"

#include <gtest/gtest.h>

namespace aibox::agent::console {
namespace {

TEST(ConsolePath, NamesFilesBelowTheDirectory) {
  EXPECT_EQ(filePath("/"), "index.html");
  EXPECT_EQ(filePath("/?lang=zh"), "index.html");
  EXPECT_EQ(filePath("/index.html"), "index.html");
  EXPECT_EQ(filePath("/js/app.js"), "js/app.js");
  EXPECT_EQ(filePath("/i18n/zh-CN.json?v=2"), "i18n/zh-CN.json");
  EXPECT_EQ(filePath("/img/logo%20dark.svg"), "img/logo dark.svg");
}

TEST(ConsolePath, RefusesWhatCouldLeaveTheDirectoryOrIsHidden) {
  for (const char* target : {"",
                             "index.html",
                             "http://host/index.html",
                             "//etc/passwd",
                             "/../etc/passwd",
                             "/js/../../etc/passwd",
                             "/%2e%2e/etc/passwd",
                             "/%2E%2E/x",
                             "/js/%2e%2e%2fapp.js",
                             "/js%2fapp.js",
                             "/js%5capp.js",
                             "/js\\app.js",
                             "/./index.html",
                             "/.git/config",
                             "/.env",
                             "/js/.hidden.js",
                             "/%2ehtaccess",
                             "/js/",
                             "/js//app.js",
                             "/a%00.js",
                             "/a%0a.js",
                             "/a%",
                             "/a%2",
                             "/a%zz.js",
                             "/a%7f.js"}) {
    EXPECT_FALSE(filePath(target)) << target;
  }
  EXPECT_FALSE(filePath("/" + std::string(1100, 'a')));
}

TEST(ConsoleTypes, ByExtensionAndOnlyKnownOnes) {
  EXPECT_EQ(contentType("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(contentType("js/app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(contentType("js/app.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(contentType("css/app.css"), "text/css; charset=utf-8");
  EXPECT_EQ(contentType("i18n/zh-CN.json"), "application/json");
  EXPECT_EQ(contentType("img/logo.svg"), "image/svg+xml");
  EXPECT_EQ(contentType("img/logo.png"), "image/png");
  EXPECT_EQ(contentType("favicon.ico"), "image/x-icon");
  EXPECT_EQ(contentType("fonts/inter.woff2"), "font/woff2");
  EXPECT_FALSE(contentType("README"));
  EXPECT_FALSE(contentType("backup.tar"));
  EXPECT_FALSE(contentType("js.d/app"));
  EXPECT_FALSE(contentType("app.js.bak"));
  EXPECT_EQ(cacheControl("index.html"), "no-cache");
  EXPECT_EQ(cacheControl("js/app.js"), "no-cache");
  EXPECT_EQ(cacheControl("img/logo.png"), "max-age=86400");
}

TEST(ConsoleEtag, IfNoneMatchListsWeakTagsAndStar) {
  EXPECT_TRUE(etagMatches("\"a-1\"", "\"a-1\""));
  EXPECT_TRUE(etagMatches("W/\"a-1\"", "\"a-1\""));
  EXPECT_TRUE(etagMatches("\"x\", \"a-1\"", "\"a-1\""));
  EXPECT_TRUE(etagMatches("*", "\"a-1\""));
  EXPECT_FALSE(etagMatches("", "\"a-1\""));
  EXPECT_FALSE(etagMatches("\"a-2\"", "\"a-1\""));
  EXPECT_FALSE(etagMatches("a-1", "\"a-1\""));
}

}  // namespace
}  // namespace aibox::agent::console
