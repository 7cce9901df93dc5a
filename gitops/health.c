/* Health after apply, with the rules of kstatus (sigs.k8s.io/cli-utils/pkg/kstatus):
 * Current, InProgress or Failed from an object's status as the API server returns it. */
#include "gitops.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

const char *gitops_health_name(enum gitops_health h)
{
    return h == GITOPS_CURRENT ? "Current" : h == GITOPS_FAILED ? "Failed" : "InProgress";
}

static const cJSON *at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    return b ? cJSON_GetObjectItemCaseSensitive(v, b) : v;
}

/* An integer field; dflt when absent or not a number a long holds (the API server's
 * answer is not ours to trust: converting such a double would be undefined). */
static long num(const cJSON *o, const char *a, const char *b, long dflt)
{
    const cJSON *v = at(o, a, b);
    if (!cJSON_IsNumber(v))
        return dflt;
    double d = v->valuedouble;
    return d > -9.0e15 && d < 9.0e15 ? (long)d : dflt;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The condition of this type, or NULL. */
static const cJSON *condition(const cJSON *obj, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, at(obj, "status", "conditions"))
    {
        const char *t = str(c, "type");
        if (t && !strcmp(t, type))
            return c;
    }
    return NULL;
}

/* The message of the condition of this type, or "no message". */
static const char *cond_message(const cJSON *obj, const char *type)
{
    const char *m = str(condition(obj, type), "message");
    return m ? m : "no message";
}

static bool cond_is(const cJSON *obj, const char *type, const char *status)
{
    const cJSON *c = condition(obj, type);
    return c && str(c, "status") && !strcmp(str(c, "status"), status);
}

static enum gitops_health say(enum gitops_health h, char *msg, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum gitops_health say(enum gitops_health h, char *msg, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
    return h;
}

static enum gitops_health deployment(const cJSON *o, char *msg, size_t n)
{
    long want = num(o, "spec", "replicas", 1);
    const cJSON *prog = condition(o, "Progressing");
    if (prog && str(prog, "reason") && !strcmp(str(prog, "reason"), "ProgressDeadlineExceeded"))
        return say(GITOPS_FAILED, msg, n, "progress deadline exceeded");
    long updated = num(o, "status", "updatedReplicas", 0);
    long total = num(o, "status", "replicas", 0);
    long avail = num(o, "status", "availableReplicas", 0);
    long ready = num(o, "status", "readyReplicas", 0);
    if (updated < want)
        return say(GITOPS_IN_PROGRESS, msg, n, "updated: %ld/%ld", updated, want);
    if (total > updated)
        return say(GITOPS_IN_PROGRESS, msg, n, "pending termination: %ld", total - updated);
    if (avail < want)
        return say(GITOPS_IN_PROGRESS, msg, n, "available: %ld/%ld", avail, want);
    if (ready < want)
        return say(GITOPS_IN_PROGRESS, msg, n, "ready: %ld/%ld", ready, want);
    if (want > 0 && !cond_is(o, "Available", "True"))
        return say(GITOPS_IN_PROGRESS, msg, n, "not Available");
    return say(GITOPS_CURRENT, msg, n, "available: %ld/%ld", avail, want);
}

static enum gitops_health statefulset(const cJSON *o, char *msg, size_t n)
{
    const char *strategy = str(at(o, "spec", "updateStrategy"), "type");
    if (strategy && !strcmp(strategy, "OnDelete"))
        return say(GITOPS_CURRENT, msg, n, "update strategy OnDelete");
    long want = num(o, "spec", "replicas", 1);
    long ready = num(o, "status", "readyReplicas", 0);
    long current = num(o, "status", "currentReplicas", 0);
    long total = num(o, "status", "replicas", 0);
    const char *cur_rev = str(at(o, "status", NULL), "currentRevision");
    const char *upd_rev = str(at(o, "status", NULL), "updateRevision");
    if (total > want)
        return say(GITOPS_IN_PROGRESS, msg, n, "pending termination: %ld", total - want);
    if (ready < want)
        return say(GITOPS_IN_PROGRESS, msg, n, "ready: %ld/%ld", ready, want);
    if (want > 0 && (current < want || (upd_rev && (!cur_rev || strcmp(cur_rev, upd_rev)))))
        return say(GITOPS_IN_PROGRESS, msg, n, "rolling update: %ld/%ld current", current, want);
    return say(GITOPS_CURRENT, msg, n, "ready: %ld/%ld", ready, want);
}

static enum gitops_health daemonset(const cJSON *o, char *msg, size_t n)
{
    long desired = num(o, "status", "desiredNumberScheduled", -1);
    if (desired < 0)
        return say(GITOPS_IN_PROGRESS, msg, n, "no status.desiredNumberScheduled yet");
    static const char *const fields[] = {"currentNumberScheduled", "updatedNumberScheduled",
                                         "numberAvailable", "numberReady"};
    for (size_t i = 0; i < 4; i++) {
        long v = num(o, "status", fields[i], 0);
        if (v < desired)
            return say(GITOPS_IN_PROGRESS, msg, n, "%s: %ld/%ld", fields[i], v, desired);
    }
    return say(GITOPS_CURRENT, msg, n, "ready: %ld/%ld", desired, desired);
}

static enum gitops_health job(const cJSON *o, char *msg, size_t n)
{
    if (cond_is(o, "Failed", "True"))
        return say(GITOPS_FAILED, msg, n, "job failed: %s", cond_message(o, "Failed"));
    if (cond_is(o, "Complete", "True"))
        return say(GITOPS_CURRENT, msg, n, "job completed");
    /* kstatus counts a started job as current: it runs, nothing more is known */
    if (!str(at(o, "status", NULL), "startTime"))
        return say(GITOPS_IN_PROGRESS, msg, n, "job not started");
    return say(GITOPS_CURRENT, msg, n, "job in progress: %ld succeeded",
               num(o, "status", "succeeded", 0));
}

static enum gitops_health crd(const cJSON *o, char *msg, size_t n)
{
    if (cond_is(o, "NamesAccepted", "False"))
        return say(GITOPS_FAILED, msg, n, "names not accepted: %s",
                   cond_message(o, "NamesAccepted"));
    if (cond_is(o, "Established", "True"))
        return say(GITOPS_CURRENT, msg, n, "established");
    return say(GITOPS_IN_PROGRESS, msg, n, "not established yet");
}

enum gitops_health gitops_health_of(const cJSON *obj, char *msg, size_t n)
{
    const cJSON *meta = at(obj, "metadata", NULL);
    const char *kind = str(obj, "kind");
    const char *av = str(obj, "apiVersion");
    if (cJSON_GetObjectItemCaseSensitive(meta, "deletionTimestamp"))
        return say(GITOPS_IN_PROGRESS, msg, n, "being deleted");
    long gen = num(obj, "metadata", "generation", -1);
    long seen = num(obj, "status", "observedGeneration", -1);
    if (seen >= 0 && gen >= 0 && seen < gen)
        return say(GITOPS_IN_PROGRESS, msg, n, "generation %ld not observed yet (at %ld)", gen,
                   seen);
    if (cond_is(obj, "Stalled", "True"))
        return say(GITOPS_FAILED, msg, n, "stalled: %s", cond_message(obj, "Stalled"));
    if (cond_is(obj, "Reconciling", "True"))
        return say(GITOPS_IN_PROGRESS, msg, n, "reconciling");
    if (kind && av && !strcmp(av, "apps/v1")) {
        if (!strcmp(kind, "Deployment"))
            return deployment(obj, msg, n);
        if (!strcmp(kind, "StatefulSet"))
            return statefulset(obj, msg, n);
        if (!strcmp(kind, "DaemonSet"))
            return daemonset(obj, msg, n);
    }
    if (kind && av && !strcmp(av, "batch/v1") && !strcmp(kind, "Job"))
        return job(obj, msg, n);
    if (kind && av && !strncmp(av, "apiextensions.k8s.io/", 21) &&
        !strcmp(kind, "CustomResourceDefinition"))
        return crd(obj, msg, n);
    if (cond_is(obj, "Ready", "False"))
        return say(GITOPS_IN_PROGRESS, msg, n, "Ready is False: %s", cond_message(obj, "Ready"));
    return say(GITOPS_CURRENT, msg, n, "current");
}
