/*
 * Opens a LUKS2 image through its tokens N times in one process, as
 * `cryptsetup open --test-passphrase --token-only` does (no device-mapper):
 * for the token plugin's leak check under valgrind and its core scan under gdb.
 *   usage: token-open IMAGE [N]    exit 0 when every open unlocked a keyslot
 */
#include <libcryptsetup.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  struct crypt_device *cd = NULL;
  int n = argc > 2 ? atoi(argv[2]) : 1;
  if (argc < 2 || crypt_init(&cd, argv[1]) < 0 || crypt_load(cd, CRYPT_LUKS2, NULL) < 0) {
    fprintf(stderr, "token-open: cannot load %s\n", argc > 1 ? argv[1] : "(no image)");
    return 2;
  }
  for (int i = 0; i < n; i++) {
    int r = crypt_activate_by_token(cd, NULL, CRYPT_ANY_TOKEN, NULL, 0);
    if (r < 0) {
      fprintf(stderr, "token-open: open %d failed: %d\n", i, r);
      crypt_free(cd);
      return 1;
    }
  }
  crypt_free(cd);
  printf("token-open: %d opens\n", n);
  return 0;
}
