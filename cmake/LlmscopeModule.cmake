# llmscope_module(NAME <name> [SRCS ...] [DEPS ...] [PRIVATE_DEPS ...] [TEST_SRCS ...]
#                 [TEST_DEPS ...])
# One static library per module (llmscope_<name>, alias llmscope::<name>) and, when
# TEST_SRCS are given, one GoogleTest binary <name>_test registered with CTest.
# DEPS are public (appear in the module's headers); PRIVATE_DEPS are implementation only
# (third-party libraries stay private to the module that wraps them).
function(llmscope_module)
  cmake_parse_arguments(M "" "NAME" "SRCS;DEPS;PRIVATE_DEPS;TEST_SRCS;TEST_DEPS" ${ARGN})
  set(lib llmscope_${M_NAME})
  if(M_SRCS)
    add_library(${lib} STATIC ${M_SRCS})
    target_include_directories(${lib} PUBLIC ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${lib} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS} llmscope_warnings)
  else()
    add_library(${lib} INTERFACE)
    target_include_directories(${lib} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${lib} INTERFACE ${M_DEPS})
  endif()
  add_library(llmscope::${M_NAME} ALIAS ${lib})
  if(M_TEST_SRCS AND LLMSCOPE_BUILD_TESTS)
    add_executable(${M_NAME}_test ${M_TEST_SRCS})
    target_link_libraries(${M_NAME}_test PRIVATE ${lib} ${M_TEST_DEPS} ${M_PRIVATE_DEPS}
                          GTest::gtest_main GTest::gmock llmscope_warnings)
    add_test(NAME ${M_NAME}_test COMMAND ${M_NAME}_test --gtest_brief=1)
    set_tests_properties(${M_NAME}_test PROPERTIES LABELS unit TIMEOUT 300)
  endif()
endfunction()

# llmscope_embed_text(<out_var> INPUT <file> NAMESPACE <ns> FUNCTION <name>)
# Generates a .cc defining `std::string_view <ns>::<name>()` that returns the bytes of
# <file>, regenerated whenever the file changes; sets <out_var> to the generated path.
function(llmscope_embed_text out_var)
  cmake_parse_arguments(E "" "INPUT;NAMESPACE;FUNCTION" "" ${ARGN})
  get_filename_component(stem ${E_INPUT} NAME_WE)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${stem}_embedded.cc)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DINPUT=${E_INPUT} -DOUTPUT=${out} -DNAMESPACE=${E_NAMESPACE}
            -DFUNCTION=${E_FUNCTION} -P ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
    DEPENDS ${E_INPUT} ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
    COMMENT "Embedding ${E_INPUT}"
    VERBATIM)
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
