namespace alumia::cli { void placeholder() {} }
