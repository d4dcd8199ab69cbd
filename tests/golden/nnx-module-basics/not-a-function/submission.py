module_basics_forward = 42
