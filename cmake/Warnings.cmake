# One interface target carries the project's warning flags; every target links it.
add_library(alumia_warnings INTERFACE)
target_compile_options(alumia_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2
  -Wimplicit-fallthrough)
# GCC 12 at -O3 (Release) reports false -Wrestrict on std::string code inlined from libstdc++
# (GCC bug 105329: "literal" + std::string&&, or assigning a one-character literal). The code spells
# those few places another way (append, push_back) rather than turning the warning off.
if(ALUMIA_WERROR)
  target_compile_options(alumia_warnings INTERFACE -Werror)
endif()
