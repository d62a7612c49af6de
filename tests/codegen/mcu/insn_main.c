/* test_toolchain.py: for each argument n, spin(n), spin_to_entry(n) and spin_nested(n)
   (insn_spin.S: 5n + 2, 2n + 1 and 5n + 5 instructions). */
#include <stdio.h>
#include <stdlib.h>

extern void spin(unsigned n);
extern void spin_to_entry(unsigned n);
extern void spin_nested(unsigned n);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
    {
        unsigned n = (unsigned)strtoul(argv[i], NULL, 0);
        spin(n);
        spin_to_entry(n);
        spin_nested(n);
    }
    printf("spun %d\n", argc - 1);
    return 0;
}
