#include "tools/byte_size.h"

#include <charconv>
#include <string>

namespace lazyblob {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The power of 1024 a unit stands for, or -1 when the unit is unknown.
int UnitShift(std::string_view unit) {
  std::string u;
  for (char c : unit) u += Lower(c);
  if (u.empty() || u == "b") return 0;
  int shift;
  switch (u[0]) {
    case 'k':
      shift = 10;
      break;
    case 'm':
      shift = 20;
      break;
    case 'g':
      shift = 30;
      break;
    case 't':
      shift = 40;
      break;
    default:
      return -1;
  }
  const std::string_view rest = std::string_view(u).substr(1);
  return rest.empty() || rest == "b" || rest == "ib" ? shift : -1;
}

}  // namespace

Result<std::uint64_t> ParseByteSize(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgument("bad size '" + std::string(text) + "': " + std::string(why) +
                           " (examples: 4096, 64K, 1M, 1MiB)");
  };
  std::uint64_t number = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, number);
  if (ec == std::errc::result_out_of_range) return bad("too large");
  if (ec != std::errc() || ptr == first) return bad("not a number");
  const int shift = UnitShift(std::string_view(ptr, static_cast<std::size_t>(last - ptr)));
  if (shift < 0) return bad("unknown unit");
  if (shift > 0 && number > (UINT64_MAX >> shift)) return bad("too large");
  return number << shift;
}

}  // namespace lazyblob
