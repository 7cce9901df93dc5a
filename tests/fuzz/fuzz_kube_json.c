/* What the Kubernetes API answers about an object, judged by the health rules. */
#include "fuzz.h"
#include "../../gitops/gitops.h"

#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    cJSON *o = cJSON_Parse(text);
    if (o) {
        char msg[256];
        gitops_health_of(o, msg, sizeof msg);
        cJSON_Delete(o);
    }
    free(text);
    return 0;
}
