#include "collector/policy/text_normalize.h"

#include <cstdint>

namespace idflow::policy {

namespace {

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Reads `text` one folded character at a time, allocating nothing.
class FoldCursor {
 public:
  explicit FoldCursor(std::string_view text) : text_(text) {}

  // The next byte of FoldForMatch(text), or -1 at the end.
  int Next() {
    bool space = false;
    while (pos_ < text_.size()) {
      int c = 0;
      int width = 1;
      bool is_space = false;
      Decode(&c, &width, &is_space);
      if (is_space) {
        space = true;
        pos_ += width;
        continue;
      }
      if (space && emitted_) return ' ';  // the character itself is read next time
      pos_ += width;
      emitted_ = true;
      return c;
    }
    return -1;  // trailing whitespace is dropped
  }

 private:
  // The character at pos_: its folded byte, its width in the input, and
  // whether it is whitespace.
  void Decode(int* c, int* width, bool* is_space) const {
    const auto b0 = static_cast<unsigned char>(text_[pos_]);
    // Three-byte sequences EF BC 81..EF BD 9E are U+FF01..U+FF5E and
    // E3 80 80 is U+3000.
    if (pos_ + 2 < text_.size()) {
      const auto b1 = static_cast<unsigned char>(text_[pos_ + 1]);
      const auto b2 = static_cast<unsigned char>(text_[pos_ + 2]);
      if (b0 == 0xE3 && b1 == 0x80 && b2 == 0x80) {
        *width = 3;
        *is_space = true;
        return;
      }
      if (b0 == 0xEF && (b1 == 0xBC || b1 == 0xBD) && b2 >= 0x80 && b2 <= 0xBF) {
        const uint32_t cp = 0xF000u | ((b1 & 0x3Fu) << 6) | (b2 & 0x3Fu);
        if (cp >= 0xFF01 && cp <= 0xFF5E) {
          *width = 3;
          *c = Lower(static_cast<int>(cp - 0xFF01 + 0x21));
          return;
        }
      }
    }
    *is_space = IsAsciiSpace(static_cast<char>(b0));
    *c = Lower(b0);
  }

  static int Lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

  std::string_view text_;
  size_t pos_ = 0;
  bool emitted_ = false;
};

}  // namespace

std::string FoldForMatch(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  FoldCursor cursor(text);
  for (int c = cursor.Next(); c >= 0; c = cursor.Next()) out.push_back(static_cast<char>(c));
  return out;
}

bool SameFolded(std::string_view a, std::string_view b) {
  if (a == b) return true;
  FoldCursor ca(a), cb(b);
  while (true) {
    const int x = ca.Next();
    if (x != cb.Next()) return false;
    if (x < 0) return true;
  }
}

std::string AsSentence(std::string_view text) {
  while (!text.empty() && IsAsciiSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && (IsAsciiSpace(text.back()) || text.back() == '.')) text.remove_suffix(1);
  std::string out(text);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z')
    out[0] = static_cast<char>(out[0] - 'a' + 'A');
  out.push_back('.');
  return out;
}

}  // namespace idflow::policy
