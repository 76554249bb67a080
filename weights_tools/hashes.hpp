// weights_tools/hashes.hpp: SHA-256 and SHA-1 (FIPS 180-4), to check
// downloaded files against what the Hugging Face Hub publishes: the sha256 of
// LFS files (the weights), and the git blob id of the others (configs,
// tokenizer files), which is SHA-1("blob <size>\0" + content). Written here
// from the standard so the checks need no crypto library (the tool may be
// built without OpenSSL for http-only mirrors).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "blip/core/error.hpp"

namespace blip::weights_tools {

// The Merkle–Damgård frame SHA-1 and SHA-256 share: 64-byte blocks, the message padded with 0x80, zeros and its
// bit length (big-endian), the digest the state words in hex. `Hash` provides compress(block) and state_.
template <class Hash>
class BlockHash {
 public:
  void update(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    total_bytes_ += size;
    while (size > 0) {
      const std::size_t take = std::min(size, sizeof block_ - block_used_);
      std::memcpy(block_ + block_used_, bytes, take);
      block_used_ += take, bytes += take, size -= take;
      if (block_used_ == sizeof block_) {
        static_cast<Hash*>(this)->compress(block_);
        block_used_ = 0;
      }
    }
  }

  // The digest as lowercase hex digits (8 per state word). Ends the computation.
  std::string hex_digest() {
    const std::uint64_t bit_count = total_bytes_ * 8;
    const std::uint8_t one_bit = 0x80, zero = 0;
    update(&one_bit, 1);
    while (block_used_ != 56) update(&zero, 1);
    std::uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<std::uint8_t>(bit_count >> (56 - 8 * i));
    update(length, 8);
    std::string hex;
    char digits[9];
    for (std::uint32_t word : static_cast<Hash*>(this)->state_) {
      std::snprintf(digits, sizeof digits, "%08x", word);
      hex += digits;
    }
    return hex;
  }

 private:
  std::uint8_t block_[64];
  std::size_t block_used_ = 0;
  std::uint64_t total_bytes_ = 0;
};

class Sha256 : public BlockHash<Sha256> {
 private:
  friend class BlockHash<Sha256>;
  static std::uint32_t rotate_right(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress(const std::uint8_t* block) {
    static constexpr std::uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t(block[4 * i]) << 24) | (std::uint32_t(block[4 * i + 1]) << 16) |
             (std::uint32_t(block[4 * i + 2]) << 8) | std::uint32_t(block[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const std::uint32_t s0 = rotate_right(w[i - 15], 7) ^ rotate_right(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const std::uint32_t s1 = rotate_right(w[i - 2], 17) ^ rotate_right(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4], f = state_[5],
                  g = state_[6], h = state_[7];
    for (int i = 0; i < 64; ++i) {
      const std::uint32_t t1 = h + (rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25)) +
                               ((e & f) ^ (~e & g)) + k[i] + w[i];
      const std::uint32_t t2 = (rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22)) +
                               ((a & b) ^ (a & c) ^ (b & c));
      h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    state_[0] += a, state_[1] += b, state_[2] += c, state_[3] += d;
    state_[4] += e, state_[5] += f, state_[6] += g, state_[7] += h;
  }

  std::array<std::uint32_t, 8> state_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
};

// SHA-1, for git blob ids only (git names objects by it; not for security:
// the weights, where it matters, are checked by SHA-256).
class Sha1 : public BlockHash<Sha1> {
 private:
  friend class BlockHash<Sha1>;
  static std::uint32_t rotate_left(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

  void compress(const std::uint8_t* block) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i)
      w[i] = (std::uint32_t(block[4 * i]) << 24) | (std::uint32_t(block[4 * i + 1]) << 16) |
             (std::uint32_t(block[4 * i + 2]) << 8) | std::uint32_t(block[4 * i + 3]);
    for (int i = 16; i < 80; ++i) w[i] = rotate_left(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) f = (b & c) | (~b & d), k = 0x5a827999;
      else if (i < 40) f = b ^ c ^ d, k = 0x6ed9eba1;
      else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
      else f = b ^ c ^ d, k = 0xca62c1d6;
      const std::uint32_t next = rotate_left(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rotate_left(b, 30), b = a, a = next;
    }
    state_[0] += a, state_[1] += b, state_[2] += c, state_[3] += d, state_[4] += e;
  }

  std::array<std::uint32_t, 5> state_{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
};

inline std::string sha256_hex(const std::string& text) {
  Sha256 hash;
  hash.update(text.data(), text.size());
  return hash.hex_digest();
}

// Feeds a file's contents to `hash` in 1 MiB pieces.
template <class Hash>
void hash_file(const std::string& path, Hash& hash, const char* what) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) fail(path, ": cannot open to compute its ", what);
  std::vector<char> buffer(1 << 20);
  while (stream) {
    stream.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(buffer.data(), static_cast<std::size_t>(stream.gcount()));
  }
  if (stream.bad()) fail(path, ": read error while computing its ", what);
}

// The SHA-256 of a file's contents.
inline std::string sha256_of_file(const std::string& path) {
  Sha256 hash;
  hash_file(path, hash, "sha256");
  return hash.hex_digest();
}

// The git blob id of a file: SHA-1 of "blob <size>\0" followed by the contents
// (what the Hub lists as blobId, and huggingface_hub names non-LFS blobs by).
inline std::string git_blob_id_of_file(const std::string& path, std::uint64_t size) {
  Sha1 hash;
  const std::string header = "blob " + std::to_string(size);
  hash.update(header.data(), header.size() + 1);  // with its terminating NUL
  hash_file(path, hash, "git blob id");
  return hash.hex_digest();
}

inline std::string sha1_hex(const std::string& text) {
  Sha1 hash;
  hash.update(text.data(), text.size());
  return hash.hex_digest();
}

}  // namespace blip::weights_tools
