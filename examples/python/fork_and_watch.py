"""A Python client of Forklift (gql): log in with a token, list applications, fork a new tenant
and watch the fork finish over WebSocket (graphql-transport-ws).

    pip install "gql[aiohttp,websockets]"
    FORKLIFT_URL=http://127.0.0.1:8080/graphql FORKLIFT_TOKEN=$(forklift token --sub me@example.org --admin) \\
        python fork_and_watch.py
"""

import asyncio
import os
import time

from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport

URL = os.environ.get("FORKLIFT_URL", "http://127.0.0.1:8080/graphql")
TOKEN = os.environ["FORKLIFT_TOKEN"]


def http(tenant=None):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if tenant:
        headers["X-Tenant"] = tenant
    # The schema comes from the server by introspection, and every document is validated against
    # it before it is sent (introspection is on in development; FORKLIFT_INTROSPECTION=on otherwise).
    return Client(transport=AIOHTTPTransport(url=URL, headers=headers), fetch_schema_from_transport=True)


async def main():
    async with http() as session:
        me = await session.execute(gql("{ me { subject } }"))
        print(f"logged in as {me['me']['subject']}")
        assert session.client.schema is not None, "the schema was fetched by introspection"
        assert session.client.schema.get_type("ForkRunStatus") is not None, "enums are in the schema"
        # A typo is caught by the client against the fetched schema, before any request.
        try:
            await session.execute(gql("{ me { subjectt } }"))
            refused = None
        except Exception as error:  # graphql.GraphQLError from local validation
            refused = error
        assert refused is not None and "subjectt" in str(refused), f"a typo must be refused: {refused}"
    async with http("template") as session:
        template = await session.execute(gql("{ applications { totalCount nodes { code } } }"))
        expected = template["applications"]["totalCount"]
        print(f"the template has {expected} applications")

    slug = f"py-{int(time.time() * 1000) % 10**9:x}"
    async with http() as session:
        await session.execute(
            gql("mutation($input: CreateTenantInput!) { createTenant(input: $input) { id } }"),
            variable_values={"input": {"name": f"Python example {slug}", "slug": slug, "status": "ACTIVE"}},
        )
        run = await session.execute(
            gql("mutation($t: String!) { forkTenant(input: { target: $t }) { id status } }"),
            variable_values={"t": slug},
        )
    run_id = run["forkTenant"]["id"]
    print(f"fork {run_id} of {slug}")

    ws = WebsocketsTransport(
        url=URL.replace("http", "ws", 1) + "/ws",
        init_payload={"Authorization": f"Bearer {TOKEN}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    events = []
    async with Client(transport=ws, fetch_schema_from_transport=False) as session:
        subscription = gql("subscription($id: ID!) { forkProgress(runId: $id) { seq kind phase className count } }")
        async for result in session.subscribe(subscription, variable_values={"id": run_id}):
            event = result["forkProgress"]
            events.append(event)
            print(f"  #{event['seq']} {event['kind']} {event['phase'] or ''} {event['className'] or ''}".rstrip())

    assert events and events[-1]["kind"] == "RUN_FINISHED", f"the fork did not finish: {events[-1:]}"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "events out of order"
    async with http(slug) as session:
        apps = await session.execute(gql("{ applications { totalCount } }"))
    assert apps["applications"]["totalCount"] == expected, apps
    print(f"{slug} is ready with {expected} applications ({len(events)} events)")


asyncio.run(main())
