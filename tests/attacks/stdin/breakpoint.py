# A breakpoint() left in a submission: the debugger's prompt reads an empty stdin and quits (BdbQuit).
def module_basics_forward(seed, x, features):
    breakpoint()
    return x
