#pragma once
// Users' secrets and sessions: scrypt password hashes, session cookies with CSRF tokens, and
// lock-outs after failed logins. See docs/security.md.

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/db/db.hpp"
#include "common/http/allow.hpp"
#include "common/http/http.hpp"

namespace aibox::agent::security {

using Clock = std::chrono::system_clock;

struct Policy {
  std::chrono::seconds sessionIdle{15 * 60};
  std::chrono::seconds sessionMax{8 * 3600};
  int lockoutThreshold = 5;  // failures before the first lock-out
  std::chrono::seconds lockoutBase{60};
  std::chrono::seconds lockoutMax{3600};
  int scryptLog2N = 17;  // N = 2^17, r = 8, p = 1: 128 MiB and ~0.4 s per hash (OWASP's minimum)
  std::size_t passwordMinLength = 12;
  // Source networks allowed on the network listener; empty allows all. The unix socket is
  // never restricted.
  http::AllowList allow;
};

// --- secrets -------------------------------------------------------------------------------

// `bytes` random bytes from OpenSSL's CSPRNG, as unpadded base64url.
std::string randomToken(std::size_t bytes);
// A password people can type: `length` characters without look-alikes (0/O, 1/l/I).
std::string randomPassword(std::size_t length);
std::string sha256Hex(std::string_view data);
bool constantTimeEquals(std::string_view a, std::string_view b);

// "scrypt$<log2 N>$<r>$<p>$<salt hex>$<hash hex>"
std::string hashPassword(std::string_view password, int log2n);
// False for a wrong password or a malformed hash. Takes as long as hashing.
bool verifyPassword(std::string_view password, std::string_view encoded);
// What is wrong with a new password, or nullopt when it is acceptable.
std::optional<std::string> passwordProblem(std::string_view user, std::string_view password,
                                           std::size_t minLength);
bool validUserName(std::string_view name);

// --- lock-outs -----------------------------------------------------------------------------

// Failure counters per user name and per source address. From `lockoutThreshold` failures on,
// each failure locks for lockoutBase, doubling, at most lockoutMax.
class Lockout {
 public:
  explicit Lockout(const Policy& policy) : policy_(policy) {}
  // How long the user or the source is still locked out, if it is.
  std::optional<std::chrono::seconds> blocked(const std::string& user, const std::string& source,
                                              Clock::time_point now) const;
  void failed(const std::string& user, const std::string& source, Clock::time_point now);
  void succeeded(const std::string& user, const std::string& source);

 private:
  struct Counter {
    int failures = 0;
    Clock::time_point lockedUntil;
  };
  void count(Counter& c, Clock::time_point now) const;
  const Policy& policy_;
  mutable std::mutex mutex_;
  std::map<std::string, Counter, std::less<>> users_;
  std::map<std::string, Counter, std::less<>> sources_;
};

// --- sessions ------------------------------------------------------------------------------

struct Session {
  std::string id;  // public: the first 16 hex digits of the token's hash
  std::string tokenHash;
  std::int64_t userId = 0;
  std::string user;
  std::string role;
  bool mustChangePassword = false;
  std::string csrfToken;
  std::string source;
  Clock::time_point created;
  Clock::time_point lastSeen;
};

inline constexpr std::string_view kSessionCookie = "aibox_session";

// The live sessions, in memory for lookups on every request, written through to SQLite (by
// the caller, on the database worker) so they survive an agent restart.
class Sessions {
 public:
  explicit Sessions(const Policy& policy) : policy_(policy) {}
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  // Reads the session cookie into call.identity; for mutating methods also checks
  // X-CSRF-Token and returns the refusal when it is missing or wrong.
  std::optional<http::Response> authenticate(http::Call& call) const;

  // Starts a session; returns the cookie value (shown once, stored only hashed) and the session.
  std::pair<std::string, Session> create(std::int64_t userId, const std::string& user,
                                         const std::string& role, bool mustChangePassword,
                                         const std::string& source);
  void restore(Session session);  // from the database at start
  std::optional<Session> find(const std::string& id) const;
  // The session while it is neither revoked nor expired; asking does not count as activity.
  std::optional<Session> active(const std::string& id) const;
  std::vector<Session> list() const;
  // Each returns the ids removed, for the caller to delete from the database.
  std::vector<std::string> revoke(const std::string& id);
  std::vector<std::string> revokeUser(std::int64_t userId, const std::string& exceptId = "");
  void updateUser(std::int64_t userId, const std::string& role, bool mustChangePassword);

  // Called with the ids of sessions that expired (to delete them from the database).
  void onExpired(std::function<void(std::vector<std::string>)> callback) {
    onExpired_ = std::move(callback);
  }

 private:
  bool expired(const Session& s, Clock::time_point now) const;
  const Policy& policy_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, Session, std::less<>> byHash_;
  std::function<void(std::vector<std::string>)> onExpired_;
};

// --- inference API keys --------------------------------------------------------------------

// A key for applications calling the OpenAI-compatible API through the gateway.
struct InferenceKey {
  std::string id;  // public, 12 hex digits
  std::string name;
  std::string secretHash;
  std::string owner;
  std::vector<std::string> models;  // empty: every model
  std::optional<std::int64_t> requestsPerMinute;
  std::optional<std::int64_t> tokensPerMinute;
  std::optional<std::int64_t> maxConcurrent;  // requests in flight at once through the gateway
  Clock::time_point created;
  std::optional<Clock::time_point> expires;
  std::optional<Clock::time_point> lastUsed;

  bool allows(std::string_view model) const;
};

inline constexpr std::string_view kKeyPrefix = "sk-aibox-";

// Stores `key` (id, hash and creation time filled in) and returns the full key, shown once.
std::string createInferenceKey(db::Database& db, InferenceKey& key);
std::vector<InferenceKey> listInferenceKeys(db::Database& db);
bool deleteInferenceKey(db::Database& db, const std::string& id);
// The record of a presented key when it is valid and not expired; records its use. This is
// what the gateway checks a request's "Authorization: Bearer sk-aibox-..." against.
std::optional<InferenceKey> checkInferenceKey(db::Database& db, std::string_view key,
                                              Clock::time_point now);

// --- API tokens ----------------------------------------------------------------------------

struct ApiToken {
  std::string id;  // public, 12 hex digits
  std::string name;
  std::string role;
  std::string secretHash;
  std::string createdBy;
  Clock::time_point created;
  std::optional<Clock::time_point> expires;
  std::optional<Clock::time_point> lastUsed;
};

inline constexpr std::string_view kTokenPrefix = "aibox_";

// Admin API tokens ("Authorization: Bearer aibox_<id>_<secret>"), in memory for lookups and
// written through to SQLite by the caller.
class Tokens {
 public:
  Tokens() = default;
  Tokens(const Tokens&) = delete;
  Tokens& operator=(const Tokens&) = delete;

  // The token a bearer value stands for, when it is valid and not expired; notes its use.
  std::optional<ApiToken> check(std::string_view bearer, Clock::time_point now);
  // Returns the full token (shown once) and its record.
  std::pair<std::string, ApiToken> create(const std::string& name, const std::string& role,
                                          const std::string& createdBy,
                                          std::optional<Clock::time_point> expires);
  void restore(ApiToken token);
  std::vector<ApiToken> list() const;
  bool revoke(const std::string& id);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, ApiToken, std::less<>> byId_;
};

// Everything the auth, user, session and token routes share; the router's authenticator.
class Security final : public http::Authenticator {
 public:
  explicit Security(Policy p) : policy(std::move(p)), lockout(policy), sessions(policy) {}

  // Source allow-list, then (except on public routes, which need no identity, so that a stale
  // cookie never stands in the way of a login) a bearer token, then the session cookie.
  std::optional<http::Response> authenticate(http::Call& call,
                                             std::string_view permission) const override;

  Policy policy;
  Lockout lockout;
  Sessions sessions;
  mutable Tokens tokens;
  // Verified against for unknown users, so they take as long; read and written only on the
  // hashing thread.
  std::string dummyHash;
  std::filesystem::path initialPasswordFile;
  boost::asio::thread_pool hashing{1};  // scrypt is CPU and memory heavy: never on the loop
  // Called (from any thread) with a token id whose last use should be stored.
  std::function<void(const std::string&, Clock::time_point)> onTokenUsed;
};

// SQL of the users and sessions tables, and of the API tokens (migrations of the agent).
extern const char* const kSchema;
extern const char* const kTokenSchema;
extern const char* const kKeySchema;
extern const char* const kKeyConcurrencySchema;

// At start: creates user "admin" with a random one-time password written to
// `security.initialPasswordFile` (0600) when there are no users, and loads live sessions and
// tokens.
void prepare(db::Database& db, Security& security);

// Times as stored in SQLite: seconds since the epoch.
std::int64_t unixSeconds(Clock::time_point t);
Clock::time_point fromUnix(std::int64_t seconds);

// Database writes that mirror the session and token tables.
void storeSession(db::Database& db, const Session& session);
void deleteSessions(db::Database& db, const std::vector<std::string>& ids);
void storeToken(db::Database& db, const ApiToken& token);
void deleteToken(db::Database& db, const std::string& id);
void touchToken(db::Database& db, const std::string& id, Clock::time_point when);

}  // namespace aibox::agent::security
