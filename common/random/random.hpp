#pragma once
// Random identifiers from the OpenSSL generator.

#include <cstddef>
#include <string>

namespace aibox::random {

// `bytes` random bytes as lower-case hex (twice as many characters); throws std::runtime_error
// when the generator fails, so an identifier is never predictable.
std::string hex(std::size_t bytes);

}  // namespace aibox::random
