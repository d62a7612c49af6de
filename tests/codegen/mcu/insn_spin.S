@ Functions of a known instruction count for test_toolchain.py's exactness test (Thumb-2).
    .syntax unified
    .thumb
    .text
    .global spin
    .type spin, %function
    .thumb_func
@ r0 = trip count >= 1: 1 + 5 * r0 + 1 instructions
spin:
    nop
1:  nop
    nop
    nop
    subs r0, r0, #1
    bne 1b
    bx lr
    .size spin, . - spin

    .global spin_to_entry
    .type spin_to_entry, %function
    .thumb_func
@ loops back to its first instruction: 2 * r0 + 1 instructions
spin_to_entry:
    subs r0, r0, #1
    bne spin_to_entry
    bx lr
    .size spin_to_entry, . - spin_to_entry

    .global spin_nested
    .type spin_nested, %function
    .thumb_func
@ calls spin(r0) once: push, bl, spin's 5 * r0 + 2, pop = 5 * r0 + 5 instructions
spin_nested:
    push {r4, lr}
    bl spin
    pop {r4, pc}
    .size spin_nested, . - spin_nested
