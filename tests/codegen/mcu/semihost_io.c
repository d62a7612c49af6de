/* test_toolchain.py: prints argv, copies the file named by argv[1] into the file named by argv[2]
   (through semihosting, relative to QEMU's working directory) and returns 7. */
#include <stdio.h>

int main(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
    {
        printf("argv[%d]=%s\n", i, argv[i]);
    }
    if (argc != 3)
    {
        return 1;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL)
    {
        printf("cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    char buf[64];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    {
        fwrite(buf, 1, n, out);
    }
    fclose(in);
    fclose(out);
    return 7;
}
