# aibox_warnings(target): our code builds warning-free; Boost and system headers come in as
# system includes (imported targets), so their warnings never stop the build.
function(aibox_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wformat=2
                                           # designated initializers rely on member defaults
                                           -Wno-missing-field-initializers
                                           # GCC 12 at -O3 flags "literal" + std::string as an
                                           # overlapping memcpy (GCC bug 105329, a false positive)
                                           $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
  if(AIBOX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# aibox_library(name SOURCES... [DEPS ...]): a module of the tree, included as "folder/header.hpp"
# from the project root.
function(aibox_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  aibox_warnings(${name})
endfunction()
