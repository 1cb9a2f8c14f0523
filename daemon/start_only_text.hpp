#pragma once
// Start-up code, given back once the daemon has started (issue 13 item 5: idle RSS <= 12 MiB).
//
// Why. About half of the code that runs from the start to idle runs only while starting: settings and
// their sources, the catalog's JSON, migrations, key unwrapping, the listeners' set-up (~0.5 MB of text,
// bench/startup_order.sh prints the figure). Its pages stay resident for the process's life once touched,
// although nothing calls them again: the kernel's own start-up code is freed after boot for the same
// reason (free_initmem).
//
// How. The link places that code side by side, between two marker functions, after the code that serves
// (daemon/startup.order, made by bench/startup_order.sh from a callgrind run that tells the two apart;
// lld --symbol-ordering-file, daemon/CMakeLists.txt). Once started, release_start_only_text() tells the
// kernel with madvise(MADV_DONTNEED) that the whole pages between the markers are not needed.
//
// The contract. Correctness never depends on the list: the text is a private mapping of the binary that is
// never written, so a dropped page that is executed again is read back from the page cache (a minor fault,
// or a read of the file), exactly as after the kernel reclaimed it under memory pressure. A stale list or a
// link without the order (no lld) only changes what is released. The range is released only when the
// markers are in order and less than 16 MiB apart. A debugger's breakpoints in released pages are lost
// with them (a written text page is a private copy that MADV_DONTNEED discards): set them after the start.
#include <cstddef>

extern "C" {
// The markers: empty, never called, kept apart so that the link can place the start-only code between them.
void alumia_start_only_text_begin();
void alumia_start_only_text_end();
}

namespace alumia::daemon {

// Releases the pages between the markers; returns the bytes released (0 when the range is not usable).
std::size_t release_start_only_text();

}  // namespace alumia::daemon
