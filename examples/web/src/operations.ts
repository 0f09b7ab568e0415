// The operations of the example frontend, typed by graphql-codegen from the live schema.
import { graphql } from './gql/index.js';

/** A page of applications with their actions and where each is placed (three levels). */
export const Applications = graphql(`
  query Applications($first: Int!, $after: String) {
    applications(first: $first, after: $after, orderBy: NAV_ORDER_ASC) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        code
        name
        actions { id key label actionPlacements { id position surfaceType { id key } } }
      }
    }
  }
`);

/** Renames an application. */
export const RenameApplication = graphql(`
  mutation RenameApplication($id: ID!, $name: String!) {
    updateApplication(id: $id, input: { name: $name }) { id name }
  }
`);

/** The caller and their tenants, with typed enums (Role, TenantStatus). */
export const Me = graphql(`
  query Me {
    me { subject isPlatformAdmin memberships { slug role status } }
  }
`);

/** The latest fork runs, with typed statuses and per-class counts. */
export const ForkRuns = graphql(`
  query ForkRuns {
    forkRuns(first: 5, orderBy: CREATED_AT_DESC) {
      nodes { id status phase failedPhase counts { phase className created } }
    }
  }
`);
