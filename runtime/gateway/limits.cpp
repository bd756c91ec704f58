#include <algorithm>
#include <cmath>

#include "runtime/gateway/parts.hpp"

namespace aibox::gateway {

// --- token buckets -------------------------------------------------------------------------

TokenBucket::TokenBucket(double capacity, Steady::time_point now)
    : capacity_(capacity), level_(capacity), last_(now) {}

void TokenBucket::refill(Steady::time_point now) {
  double seconds = std::chrono::duration<double>(now - last_).count();
  if (seconds > 0) {
    level_ = std::min(capacity_, level_ + seconds * capacity_ / 60);
    last_ = now;
  }
}

void TokenBucket::resize(double capacity, Steady::time_point now) {
  refill(now);
  level_ = std::min(capacity, level_ + std::max(0.0, capacity - capacity_));
  capacity_ = capacity;
}

double TokenBucket::level(Steady::time_point now) {
  refill(now);
  return level_;
}

bool TokenBucket::take(double n, Steady::time_point now) {
  refill(now);
  n = std::min(n, capacity_);
  if (level_ < n) {
    return false;
  }
  level_ -= n;
  return true;
}

void TokenBucket::add(double n, Steady::time_point now) {
  refill(now);
  level_ = std::min(capacity_, level_ + n);
}

double TokenBucket::secondsUntil(double n, Steady::time_point now) {
  refill(now);
  n = std::min(n, capacity_);
  return level_ >= n ? 0 : (n - level_) * 60 / capacity_;
}

// --- headers -------------------------------------------------------------------------------

namespace {

// As OpenAI writes its reset times: "250ms", "1.5s", "6m0s".
std::string duration(double seconds) {
  if (seconds < 1) {
    return std::to_string(static_cast<long>(std::ceil(seconds * 1000))) + "ms";
  }
  if (seconds < 60) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", seconds);
    return std::string(text) + "s";
  }
  auto whole = static_cast<long>(std::ceil(seconds));
  return std::to_string(whole / 60) + "m" + std::to_string(whole % 60) + "s";
}

}  // namespace

void setRateHeaders(const RateState& state, boost::beast::http::fields& headers) {
  if (state.limitRequests) {
    headers.set("x-ratelimit-limit-requests", std::to_string(*state.limitRequests));
    headers.set("x-ratelimit-remaining-requests", std::to_string(state.remainingRequests));
    headers.set("x-ratelimit-reset-requests", duration(state.resetRequests));
  }
  if (state.limitTokens) {
    headers.set("x-ratelimit-limit-tokens", std::to_string(*state.limitTokens));
    headers.set("x-ratelimit-remaining-tokens", std::to_string(state.remainingTokens));
    headers.set("x-ratelimit-reset-tokens", duration(state.resetTokens));
  }
}

// --- the limiter ---------------------------------------------------------------------------

struct Limiter::KeyState {
  std::mutex mutex;  // guards all but `revoked`
  std::optional<TokenBucket> requests;
  std::optional<TokenBucket> tokens;
  std::optional<std::int64_t> maxConcurrent;
  std::int64_t inFlight = 0;
  std::atomic<bool> revoked{false};

  void configure(const Key& key, Steady::time_point now) {
    auto set = [now](std::optional<TokenBucket>& bucket, const std::optional<std::int64_t>& cap) {
      if (!cap) {
        bucket.reset();
      } else if (bucket) {
        bucket->resize(static_cast<double>(*cap), now);
      } else {
        bucket.emplace(static_cast<double>(*cap), now);
      }
    };
    set(requests, key.requestsPerMinute);
    set(tokens, key.tokensPerMinute);
    maxConcurrent = key.maxConcurrent;
  }

  RateState rate(Steady::time_point now) {
    RateState r;
    if (requests) {
      r.limitRequests = static_cast<std::int64_t>(requests->capacity());
      double level = requests->level(now);
      r.remainingRequests = std::max<std::int64_t>(0, static_cast<std::int64_t>(level));
      r.resetRequests = (requests->capacity() - level) * 60 / requests->capacity();
    }
    if (tokens) {
      r.limitTokens = static_cast<std::int64_t>(tokens->capacity());
      double level = tokens->level(now);
      r.remainingTokens = std::max<std::int64_t>(0, static_cast<std::int64_t>(level));
      r.resetTokens = (tokens->capacity() - level) * 60 / tokens->capacity();
    }
    return r;
  }
};

Limiter::Ticket::Ticket(Limiter& limiter, std::shared_ptr<KeyState> key, double estimate)
    : limiter_(limiter), key_(std::move(key)), estimate_(estimate) {}

Limiter::Ticket::~Ticket() {
  std::lock_guard lock(key_->mutex);
  --key_->inFlight;
  --limiter_.inFlight_;
}

void Limiter::Ticket::settle(double used) {
  std::lock_guard lock(key_->mutex);
  if (settled_) {
    return;
  }
  settled_ = true;
  if (key_->tokens) {
    key_->tokens->add(estimate_ - used, Steady::now());
  }
}

bool Limiter::Ticket::revoked() const {
  return key_->revoked;
}

void Limiter::update(const Snapshot& snapshot) {
  auto now = Steady::now();
  std::lock_guard lock(mutex_);
  boxCap_ = snapshot.maxConcurrency;
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (!snapshot.keys.contains(it->first)) {
      it->second->revoked = true;
      it = keys_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, key] : snapshot.keys) {
    auto& state = keys_[id];
    if (!state) {
      state = std::make_shared<KeyState>();
    }
    std::lock_guard keyLock(state->mutex);
    state->configure(key, now);
  }
}

std::variant<std::shared_ptr<Limiter::Ticket>, Rejection> Limiter::admit(const Key& key,
                                                                         double estimate,
                                                                         Steady::time_point now) {
  std::shared_ptr<KeyState> state;
  {
    std::lock_guard lock(mutex_);
    auto& slot = keys_[key.id];
    if (!slot) {  // a key of a snapshot not applied here yet
      slot = std::make_shared<KeyState>();
      std::lock_guard keyLock(slot->mutex);
      slot->configure(key, now);
    }
    state = slot;
    if (boxCap_ && inFlight_ >= *boxCap_) {
      return Rejection{"concurrency_box",
                       "the box is serving its licensed maximum of " + std::to_string(*boxCap_) +
                           " requests at once; retry shortly",
                       1,
                       {}};
    }
  }
  std::lock_guard keyLock(state->mutex);
  if (state->maxConcurrent && state->inFlight >= *state->maxConcurrent) {
    return Rejection{"concurrency_key",
                     "this key already has " + std::to_string(*state->maxConcurrent) +
                         " requests in flight, its maximum; wait for one to finish",
                     1, state->rate(now)};
  }
  if (state->requests && !state->requests->take(1, now)) {
    return Rejection{"rate_limit_requests",
                     "this key's limit of " + std::to_string(*key.requestsPerMinute) +
                         " requests per minute is reached",
                     state->requests->secondsUntil(1, now), state->rate(now)};
  }
  if (state->tokens && !state->tokens->take(estimate, now)) {
    if (state->requests) {
      state->requests->add(1, now);
    }
    return Rejection{"rate_limit_tokens",
                     "this key's limit of " + std::to_string(*key.tokensPerMinute) +
                         " tokens per minute is reached",
                     state->tokens->secondsUntil(estimate, now), state->rate(now)};
  }
  ++state->inFlight;
  ++inFlight_;
  auto ticket = std::make_shared<Ticket>(
      *this, state, state->tokens ? std::min(estimate, state->tokens->capacity()) : estimate);
  ticket->rate_ = state->rate(now);
  return ticket;
}

namespace {

std::size_t textLength(const boost::json::value& v) {
  if (v.is_string()) {
    return v.as_string().size();
  }
  std::size_t n = 0;
  if (v.is_array()) {
    for (const auto& part : v.as_array()) {
      if (part.is_object()) {
        if (const auto* t = part.as_object().if_contains("text")) {
          n += textLength(*t);
        }
      } else {
        n += textLength(part);
      }
    }
  }
  return n;
}

}  // namespace

double estimateTokens(const boost::json::object& body) {
  std::size_t chars = 0;
  if (const auto* messages = body.if_contains("messages"); messages && messages->is_array()) {
    for (const auto& m : messages->as_array()) {
      if (m.is_object()) {
        if (const auto* content = m.as_object().if_contains("content")) {
          chars += textLength(*content);
        }
        chars += 16;  // the role and the template's markers
      }
    }
  }
  for (const char* field : {"prompt", "input"}) {
    if (const auto* v = body.if_contains(field)) {
      chars += textLength(*v);
    }
  }
  double tokens = std::ceil(static_cast<double>(chars) / 4);
  for (const char* field : {"max_completion_tokens", "max_tokens"}) {
    if (const auto* v = body.if_contains(field); v && v->is_int64() && v->as_int64() > 0) {
      return tokens + static_cast<double>(v->as_int64());
    }
  }
  return tokens;
}

}  // namespace aibox::gateway
