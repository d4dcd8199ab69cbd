# Issue 17: prints 10^7 lines in the graded call. Expect time_limit_exceeded whose message states the CPU
# time against the limit and how much was printed, not only "stopped from outside".
def module_basics_forward(seed, x, features):
    for i in range(10**7):
        print("line", i)
    return x
