# Writes a C++ source defining `std::string_view <NAMESPACE>::<FUNCTION>()` that returns the
# bytes of INPUT, as a raw string literal, so the binary needs no data file at run time.
# Usage: cmake -DINPUT=<file> -DOUTPUT=<file.cc> -DNAMESPACE=<ns> -DFUNCTION=<name>
#              -P embed_text.cmake
foreach(var INPUT OUTPUT NAMESPACE FUNCTION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_text.cmake: -D${var}=... is required")
  endif()
endforeach()

file(READ "${INPUT}" content)
set(delimiter "llmscope_embed")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string terminator )${delimiter}\"")
endif()
get_filename_component(input_name "${INPUT}" NAME)

set(generated "// Generated from ${input_name} by embed_text.cmake at build time. Do not edit.
#include <string_view>

namespace ${NAMESPACE} {

std::string_view ${FUNCTION}();

std::string_view ${FUNCTION}() {
  static constexpr char kText[] = R\"${delimiter}(${content})${delimiter}\";
  return {kText, sizeof(kText) - 1};
}

}  // namespace ${NAMESPACE}
")

file(WRITE "${OUTPUT}" "${generated}")
