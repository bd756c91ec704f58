# The build id is the git commit at configure time ("unknown" outside a git checkout, e.g. in a
# source package).
execute_process(
  COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  OUTPUT_VARIABLE AIBOX_BUILD_ID
  OUTPUT_STRIP_TRAILING_WHITESPACE
  ERROR_QUIET)
if(NOT AIBOX_BUILD_ID)
  set(AIBOX_BUILD_ID "unknown")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/build_info.hpp.in
               ${PROJECT_BINARY_DIR}/generated/aibox_build_info.hpp @ONLY)
