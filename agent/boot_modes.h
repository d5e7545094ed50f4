#pragma once
/* The guest's first steps as PID 1 and its test modes (boot_modes.c, C:
 * they were skiff-init). */
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Boot marker, /proc /sys /dev /run /tmp, the "skiff-agent: ..." report on
 * the console; `action` gets skiff.action= (default "poweroff"). */
void skiff_boot_begin(char* action, size_t action_size);
/* The value of key= on the kernel command line, or NULL. */
const char* skiff_cmdline_value(const char* key, char* out, size_t size);
/* Runs a test mode (every action but "agent") and powers off or reboots;
 * returns only for "panic" (PID 1 then returns it from main). */
int skiff_boot_run_mode(const char* action);
/* Lets the console drain, syncs, powers off (or reboots); never returns. */
__attribute__((noreturn)) void skiff_power_off(int reboot_instead);

#ifdef __cplusplus
}
#endif
