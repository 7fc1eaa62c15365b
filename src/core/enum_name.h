#pragma once

#include <optional>
#include <string_view>

namespace llmscope::core {

// The inverse of a Name() function over an enum whose values run from 0 to `last`: the value
// whose name is `name`, or nullopt. Linear: for the small, closed enums of wire and query
// vocabulary, where one name table (the Name() switch) is the single source of truth.
template <typename E, typename NameFn>
std::optional<E> ParseEnumName(std::string_view name, E last, NameFn name_of) {
  for (int i = 0; i <= static_cast<int>(last); ++i) {
    if (name_of(static_cast<E>(i)) == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace llmscope::core
