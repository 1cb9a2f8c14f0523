namespace alumia::test { void placeholder() {} }
