/*
 * Bare-metal start for QEMU's MPS2 boards (mps2-an385 Cortex-M3, mps2-an386 Cortex-M4,
 * mps2-an500 Cortex-M7) with newlib's rdimon semihosting: newlib's own crt0 locks up on these
 * boards, so this file provides the vector table and the reset handler (copy .data, zero .bss,
 * enable the FPU, open the semihosting streams, run main with the semihosting command line as
 * argc/argv, exit with its return value, which QEMU -semihosting makes its exit code).
 *
 * The command line is QEMU's `-semihosting-config arg=...` values joined with spaces (without them,
 * the -kernel path): newlib's rdimon crt0 would split it, but it is not linked (-nostartfiles), so
 * this file does the same. Arguments are split at spaces; they cannot contain one.
 */
#include <stdint.h>
#include <stdlib.h>

extern int main(int argc, char **argv);
extern void initialise_monitor_handles(void);
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;

void reset_handler(void);
void _init(void);
void _fini(void);

static void hang(void)
{
    for (;;)
    {
    }
}

/* initial stack pointer, reset, NMI, HardFault, MemManage, BusFault, UsageFault, 4 reserved,
   SVCall, DebugMonitor, reserved, PendSV, SysTick */
typedef union
{
    uint32_t *stack;
    void (*handler)(void);
} vector; /* ISO C cannot convert the stack's address into a function pointer; a union holds either */

__attribute__((section(".isr_vector"), used)) static const vector vectors[16] = {
    {.stack = &__stack_top}, {.handler = reset_handler}, {.handler = hang}, {.handler = hang},
    {.handler = hang}, {.handler = hang}, {.handler = hang}, {0}, {0}, {0}, {0}, {.handler = hang},
    {.handler = hang}, {0}, {.handler = hang}, {.handler = hang}};

/* SYS_GET_CMDLINE (ARM semihosting 0x15) into buf, split at spaces into argv (NULL-terminated) */
static int command_line(char *buf, int size, char **argv, int max_args)
{
    struct
    {
        char *buf;
        int size;
    } block = {buf, size};
    register int op __asm("r0") = 0x15;
    register void *arg __asm("r1") = &block;
    __asm volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
    int argc = 0;
    if (op == 0)
    {
        for (char *p = buf; *p != '\0' && argc < max_args;)
        {
            while (*p == ' ')
            {
                *p++ = '\0';
            }
            if (*p != '\0')
            {
                argv[argc++] = p;
            }
            while (*p != '\0' && *p != ' ')
            {
                p++;
            }
            if (*p == ' ')
            {
                *p++ = '\0';
            }
        }
    }
    argv[argc] = 0;
    return argc;
}

void reset_handler(void)
{
    /* on the stack: reset_handler never returns, and the image keeps no .bss for it */
    char cmdline[512];
    char *argv[33];
    const uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;)
    {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start; dst < &__bss_end;)
    {
        *dst++ = 0;
    }
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10 and CP11 full access */
    __asm volatile("dsb\n\tisb");
#endif
    initialise_monitor_handles();
    int argc = command_line(cmdline, (int)sizeof cmdline, argv, 32);
    exit(main(argc, argv));
}

/* newlib's exit() calls these; without crt0 there is nothing to construct or destroy */
void _init(void)
{
}

void _fini(void)
{
}
