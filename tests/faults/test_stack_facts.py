"""The reference-stack facts validate checks against are the stack's own: service names, replicas, feature-store fields."""

from __future__ import annotations

from chaosml.faults._rows import DATASET_ENTITY_FEATURES, DATASET_REQUEST_FEATURES
from chaosml.model.catalog import DATASETS
from chaosml.model.faulttype import REFERENCE_SERVICES, reference_replicas
from chaosml.targets import local
from chaosml.targets.kubernetes.target import REFERENCE_GROUP_ORDER
from chaosml.workload.builtin_dataset import load_dataset


def test_reference_services_are_the_local_groups_and_the_kubernetes_deployments() -> None:
    local_groups = {local.GROUP_GATEWAY, local.GROUP_MODEL, local.GROUP_FEATURE_STORE, local.GROUP_PROXY}
    assert set(REFERENCE_SERVICES) == local_groups == set(REFERENCE_GROUP_ORDER)
    assert reference_replicas(5) == {"gateway": 1, "model": 5, "feature-store": 1, "proxy": 1}


def test_feature_store_fields_are_the_bundled_datasets_entity_features() -> None:
    assert set(DATASET_ENTITY_FEATURES) == set(DATASETS) == set(DATASET_REQUEST_FEATURES)
    for name in DATASETS:
        ds = load_dataset(name)
        assert DATASET_ENTITY_FEATURES[name] == ds.entity_features
        assert DATASET_REQUEST_FEATURES[name] == ds.request_features
