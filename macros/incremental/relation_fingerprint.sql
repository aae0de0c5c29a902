{#- A scalar subquery: a hash of every row of `relation` (order-independent),
    so a model can tell that a seed it read has changed. -#}
{% macro relation_fingerprint(relation) %}
    {{ return(adapter.dispatch('relation_fingerprint', 'convo_warehouse')(relation)) }}
{% endmacro %}

{% macro default__relation_fingerprint(relation) %}
    (
        select md5(concat_ws('|', sort_array(collect_list(to_json(struct(*))))))
        from {{ relation }}
    )
{% endmacro %}

{% macro duckdb__relation_fingerprint(relation) %}
    (
        select md5(coalesce(string_agg(cast(fingerprinted as varchar), '|' order by cast(fingerprinted as varchar)), ''))
        from {{ relation }} as fingerprinted
    )
{% endmacro %}

{#- stg_events' mapping inputs: every seed or model it reads besides
    base_events_parsed (aliases, event types, ...) and the vars its rules
    use. When this changes, every staged event is mapped again. -#}
{% macro staged_event_mapping_fingerprint(vars=[]) %}
    {%- set parts = [] -%}
    {%- for node_id in model.depends_on.nodes if node_id.split('.')[0] in ('seed', 'model') and not node_id.endswith('.base_events_parsed') -%}
        {%- set node = graph.nodes[node_id] -%}
        {%- do parts.append(relation_fingerprint(api.Relation.create(
            database=node.database, schema=node.schema, identifier=node.alias
        ))) -%}
    {%- endfor -%}
    {%- for name in vars -%}
        {%- do parts.append(string_literal(name ~ "=" ~ (var(name, none) | string))) -%}
    {%- endfor -%}
    ({{ dbt.concat(parts) if parts | length > 1 else (parts[0] if parts else "''") }})
{%- endmacro %}
