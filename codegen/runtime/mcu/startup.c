/*
 * Bare-metal start for QEMU's MPS2 boards (mps2-an385 Cortex-M3, mps2-an386 Cortex-M4,
 * mps2-an500 Cortex-M7) with newlib's rdimon semihosting: newlib's own crt0 locks up on these
 * boards, so this file provides the vector table and the reset handler (copy .data, zero .bss,
 * enable the FPU, open the semihosting streams, run main, exit with its return value, which
 * QEMU -semihosting makes its exit code).
 */
#include <stdint.h>
#include <stdlib.h>

extern int main(void);
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
__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, reset_handler, hang, hang, hang, hang, hang, 0, 0, 0, 0, hang, hang, 0, hang, hang};

void reset_handler(void)
{
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
    exit(main());
}

/* newlib's exit() calls these; without crt0 there is nothing to construct or destroy */
void _init(void)
{
}

void _fini(void)
{
}
