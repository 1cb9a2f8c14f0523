namespace alumia::daemon { void placeholder() {} }
