/**
 * Attribute schemas: what each statement kind accepts. The checker (src/syntax/check.ts) resolves a
 * statement's items against its kind's schema; lowering only ever sees resolved, validated attributes.
 */
export type AttrType =
  | { readonly kind: 'int'; readonly min?: number; readonly max?: number; /** A string is accepted too, meaning this (e.g. 'a vocabulary file'). */ readonly orString?: string }
  | { readonly kind: 'float'; readonly min?: number; readonly max?: number; readonly minExclusive?: boolean }
  | { readonly kind: 'bool' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  /** A double-quoted string, meaning `what` (e.g. 'a token of the vocabulary'). */
  | { readonly kind: 'string'; readonly what: string };

export type AttrValue = number | string | boolean;

export interface AttrSpec {
  readonly name: string;
  readonly type: AttrType;
  /** Used when the attribute is absent. No default and not required means "absent" (undefined). */
  readonly default?: AttrValue;
  readonly required?: boolean;
  /** A bare first item is this attribute's value (`linear 96`, `pool max`). At most one per kind. */
  readonly positional?: boolean;
  readonly doc: string;
}

/** Where a statement may appear. */
export type Placement = 'model' | 'chain';

export interface KindSchema {
  readonly kind: string;
  /** Groups kinds in docs and in the registry files. */
  readonly family: string;
  readonly doc: string;
  readonly attrs: readonly AttrSpec[];
  /** 'block' kinds must have a `{ ... }` body; others must not. */
  readonly shape: 'layer' | 'block' | 'directive';
  /** `directive`s (decode) sit at model level only; `encoder`/`decoder` only at model level. */
  readonly topLevelOnly?: boolean;
}

export type Attrs = Readonly<Record<string, AttrValue | undefined>>;

export const int = (min?: number, max?: number): AttrType => ({ kind: 'int', min, max });
/** An integer, or a string meaning `what` (a file, a token). */
export const intOrString = (min: number, max: number, what: string): AttrType => ({ kind: 'int', min, max, orString: what });
export const str = (what: string): AttrType => ({ kind: 'string', what });
export const float = (min?: number, max?: number, minExclusive = false): AttrType => ({ kind: 'float', min, max, minExclusive });
export const bool: AttrType = { kind: 'bool' };
export const oneOf = (...values: string[]): AttrType => ({ kind: 'enum', values });
