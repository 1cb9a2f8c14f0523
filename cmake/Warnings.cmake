# One interface target carries the project's warning flags; every target links it.
add_library(alumia_warnings INTERFACE)
target_compile_options(alumia_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2
  -Wimplicit-fallthrough)
if(ALUMIA_WERROR)
  target_compile_options(alumia_warnings INTERFACE -Werror)
endif()
