/* YAML (lab.yaml, machines.d, patches, GitOps manifests) to nodes, to JSON and back. */
#include "fuzz.h"

#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bd_yaml_doc d;
    struct bd_err err;
    if (bd_yaml_parse((const char *)data, size, "fuzz.yaml", &d, &err) < 0)
        return 0;
    for (size_t i = 0; i < d.ndocs; i++) {
        cJSON *j = bd_node_to_json(d.docs[i]);
        struct bd_node *back = bd_node_from_json(j);
        bd_node_free(back);
        cJSON_Delete(j);
    }
    bd_yaml_doc_free(&d);
    return 0;
}
