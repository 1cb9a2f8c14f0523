# Sanitizer builds (`make test-sanitize`, `make test-tsan`, `make fuzz`; README.md, "Sanitizers and fuzzing").
# ALUMIA_SANITIZE is a -fsanitize= list applied to every target, libraries, binaries and tests alike:
#   address,undefined  build-asan: every report is fatal (-fno-sanitize-recover=all), so a finding fails its test
#   thread             build-tsan: the concurrency tests (tests/CMakeLists.txt, label "tsan")
# Empty (the default) is the ordinary build. The fuzz targets (fuzz/, ALUMIA_BUILD_FUZZ) add fuzzer
# instrumentation on top of address,undefined with clang.
set(ALUMIA_SANITIZE "" CACHE STRING "Sanitizers for every target: '', 'address,undefined' or 'thread'")
if(ALUMIA_SANITIZE)
  if(ALUMIA_SANITIZE MATCHES "thread" AND ALUMIA_SANITIZE MATCHES "address")
    message(FATAL_ERROR "ALUMIA_SANITIZE: thread and address do not combine ('${ALUMIA_SANITIZE}')")
  endif()
  add_compile_options(-fsanitize=${ALUMIA_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${ALUMIA_SANITIZE})
  add_compile_definitions(ALUMIA_SANITIZED=1)
  # GCC 12's flow analysis sees through the sanitizers' instrumentation badly: with -fsanitize=address it
  # reports std::function inside libstdc++'s <regex> as maybe uninitialized (GCC's manual warns that
  # -fsanitize=address can make -Wmaybe-uninitialized misfire). The ordinary build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
endif()

# libFuzzer coverage instrumentation for everything (clang only; fuzz/CMakeLists.txt checks).
option(ALUMIA_BUILD_FUZZ "Build the libFuzzer targets of fuzz/ (clang; `make fuzz`)" OFF)
if(ALUMIA_BUILD_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
