/* secrets.yaml (talosctl gen secrets' layout): keys and certificates in PEM. */
#include "fuzz.h"
#include "../../talos/talos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct talos_secrets *s;
    struct bd_err err;
    char *text = fuzz_text(data, size);
    if (talos_secrets_parse(text, size, "secrets.yaml", &s, &err) == 0)
        talos_secrets_free(s);
    free(text);
    return 0;
}
