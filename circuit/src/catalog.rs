//! The catalog: peering locations, Azure regions, geopolitical areas and BGP
//! communities, from Microsoft's ExpressRoute documentation (sources and
//! reading date in the header of `data/catalog.toml`). Embedded at build time.

use serde::Deserialize;

use crate::community::Community;
use crate::config::SkuTier;

/// The catalog embedded in the crate.
pub const EMBEDDED_CATALOG: &str = include_str!("../data/catalog.toml");

/// The Azure cloud a region or peering location belongs to, as `az cloud
/// list` names it. National clouds are isolated from the global cloud and
/// from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum Cloud {
    #[default]
    AzureCloud,
    AzureUSGovernment,
    AzureChinaCloud,
}

impl Cloud {
    pub fn is_national(self) -> bool {
        self != Cloud::AzureCloud
    }
}

/// An Azure region with a documented region community: VNets may be placed
/// in it and the emulator tags their routes with `community`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Programmatic name, e.g. `westeurope`.
    pub id: String,
    /// Display name, e.g. `West Europe`.
    pub name: String,
    /// Geopolitical area, e.g. `Europe`.
    pub area: String,
    /// Region BGP community on Microsoft peering (12076:51xxx), the one
    /// route filters select.
    pub community: Community,
    /// Region BGP community Azure tags private-peering routes with
    /// (12076:50xxx), where documented.
    pub private_peering_community: Option<Community>,
    /// National cloud (isolated from the global cloud).
    pub national: bool,
    pub cloud: Cloud,
}

/// A region the ExpressRoute pages name (as a local region or in a
/// geopolitical area) but give no region community for. Known so that the
/// locations around it are complete; the emulator cannot route VNets there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionWithoutCommunity {
    pub id: String,
    pub name: String,
    pub area: String,
    pub national: bool,
    pub cloud: Cloud,
}

/// An ExpressRoute peering location.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeeringLocation {
    pub name: String,
    pub metro: String,
    pub area: String,
    /// Display names of the regions a Local circuit at this location
    /// reaches; empty where Microsoft offers no ExpressRoute Local.
    pub local_regions: Vec<String>,
    #[serde(default)]
    pub national: bool,
    #[serde(default)]
    pub cloud: Cloud,
}

impl PeeringLocation {
    /// Whether ExpressRoute Local is offered here.
    pub fn offers_local(&self) -> bool {
        !self.local_regions.is_empty()
    }
}

/// A Microsoft peering service community (e.g. 12076:5010 Exchange Online).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceCommunity {
    pub name: String,
    pub community: Community,
    /// The prefixes the emulated service is advertised with on Microsoft
    /// peering when a route filter selects its community.
    #[serde(default)]
    pub prefixes: Vec<ipnet::IpNet>,
}

/// What a community in a route filter stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommunityKind<'a> {
    Service(&'a ServiceCommunity),
    Region(&'a Region),
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("catalog is inconsistent: {0}")]
    Inconsistent(String),
}

/// A region as the file writes it: `community` may be absent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegionEntry {
    id: String,
    name: String,
    area: String,
    community: Option<Community>,
    private_peering_community: Option<Community>,
    #[serde(default)]
    national: bool,
    #[serde(default)]
    cloud: Cloud,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogFile {
    regions: Vec<RegionEntry>,
    peering_locations: Vec<PeeringLocation>,
    service_communities: Vec<ServiceCommunity>,
}

/// Peering locations, regions and communities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// Regions with a region community, in file order.
    pub regions: Vec<Region>,
    /// Regions named by the documentation without a region community.
    pub regions_without_community: Vec<RegionWithoutCommunity>,
    pub peering_locations: Vec<PeeringLocation>,
    pub service_communities: Vec<ServiceCommunity>,
}

/// Azure's programmatic name for a display name: `West US 2` -> `westus2`.
pub fn region_id(display_name: &str) -> String {
    display_name
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Catalog {
    /// The catalog shipped with the crate.
    pub fn embedded() -> Self {
        Self::from_toml(EMBEDDED_CATALOG).expect("the embedded catalog is valid (tested)")
    }

    /// Parses and checks a catalog: ids derived from names, names and
    /// communities unique, every location's local regions known and in the
    /// location's area and cloud.
    pub fn from_toml(text: &str) -> Result<Self, CatalogError> {
        let file: CatalogFile = toml::from_str(text)?;
        let mut catalog = Catalog {
            regions: Vec::new(),
            regions_without_community: Vec::new(),
            peering_locations: file.peering_locations,
            service_communities: file.service_communities,
        };
        for r in file.regions {
            match r.community {
                Some(community) => catalog.regions.push(Region {
                    id: r.id,
                    name: r.name,
                    area: r.area,
                    community,
                    private_peering_community: r.private_peering_community,
                    national: r.national,
                    cloud: r.cloud,
                }),
                None if r.private_peering_community.is_some() => {
                    return Err(CatalogError::Inconsistent(format!(
                        "region {}: privatePeeringCommunity without community",
                        r.name
                    )));
                }
                None => catalog
                    .regions_without_community
                    .push(RegionWithoutCommunity {
                        id: r.id,
                        name: r.name,
                        area: r.area,
                        national: r.national,
                        cloud: r.cloud,
                    }),
            }
        }
        catalog.check()?;
        Ok(catalog)
    }

    /// Every region as (id, name, area, national, cloud), with or without
    /// a community.
    fn all_regions(&self) -> impl Iterator<Item = (&str, &str, &str, bool, Cloud)> + '_ {
        let with = self
            .regions
            .iter()
            .map(|r| (&*r.id, &*r.name, &*r.area, r.national, r.cloud));
        let without = self
            .regions_without_community
            .iter()
            .map(|r| (&*r.id, &*r.name, &*r.area, r.national, r.cloud));
        with.chain(without)
    }

    fn check(&self) -> Result<(), CatalogError> {
        let bad = |m: String| Err(CatalogError::Inconsistent(m));
        let regions: Vec<_> = self.all_regions().collect();
        for (i, &(id, name, _, national, cloud)) in regions.iter().enumerate() {
            if id != region_id(name) {
                return bad(format!(
                    "region {name}: id {id:?} is not {:?} (the name lowercased without spaces)",
                    region_id(name)
                ));
            }
            if national != cloud.is_national() {
                return bad(format!(
                    "region {name}: national = {national} but cloud = {cloud:?} (national clouds: AzureUSGovernment, AzureChinaCloud)"
                ));
            }
            if regions[..i]
                .iter()
                .any(|o| o.0.eq_ignore_ascii_case(id) || o.1.eq_ignore_ascii_case(name))
            {
                return bad(format!("region {name} is listed twice"));
            }
        }

        let mut communities: Vec<(Community, &str)> = Vec::new();
        let owned = self
            .regions
            .iter()
            .flat_map(|r| {
                [Some(r.community), r.private_peering_community]
                    .into_iter()
                    .flatten()
                    .map(|c| (c, r.name.as_str()))
            })
            .chain(
                self.service_communities
                    .iter()
                    .map(|s| (s.community, s.name.as_str())),
            );
        for (c, owner) in owned {
            if let Some((_, other)) = communities.iter().find(|(o, _)| *o == c) {
                return bad(format!("{other} and {owner} share community {c}"));
            }
            communities.push((c, owner));
        }

        for (i, l) in self.peering_locations.iter().enumerate() {
            if self.peering_locations[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&l.name))
            {
                return bad(format!("peering location {} is listed twice", l.name));
            }
            if l.national != l.cloud.is_national() {
                return bad(format!(
                    "peering location {}: national = {} but cloud = {:?} (national clouds: AzureUSGovernment, AzureChinaCloud)",
                    l.name, l.national, l.cloud
                ));
            }
            // An area without regions would make Standard reach nothing.
            if !regions.iter().any(|r| r.2 == l.area && r.4 == l.cloud) {
                return bad(format!(
                    "peering location {}: no region of the {:?} lies in area {}",
                    l.name, l.cloud, l.area
                ));
            }
            for (j, name) in l.local_regions.iter().enumerate() {
                let Some(&(_, rname, area, _, cloud)) =
                    regions.iter().find(|r| r.1.eq_ignore_ascii_case(name))
                else {
                    return bad(format!(
                        "peering location {}: unknown local region {name}",
                        l.name
                    ));
                };
                if area != l.area || cloud != l.cloud {
                    return bad(format!(
                        "peering location {} ({}, {:?}) lists local region {rname} of area {area} ({cloud:?})",
                        l.name, l.area, l.cloud
                    ));
                }
                if l.local_regions[..j]
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(name))
                {
                    return bad(format!(
                        "peering location {}: local region {rname} is listed twice",
                        l.name
                    ));
                }
            }
        }

        for s in &self.service_communities {
            for prefix in &s.prefixes {
                if prefix.trunc() != *prefix {
                    return bad(format!(
                        "service {}: prefix {prefix} has host bits set",
                        s.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// A region by display name (`West Europe`) or programmatic name
    /// (`westeurope`), case-insensitively. Regions without a community are
    /// not found here: see [`Catalog::region_without_community`].
    pub fn region(&self, name: &str) -> Option<&Region> {
        let name = name.trim();
        self.regions
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name) || r.id.eq_ignore_ascii_case(name))
    }

    /// A region the documentation names without a region community, by
    /// display or programmatic name.
    pub fn region_without_community(&self, name: &str) -> Option<&RegionWithoutCommunity> {
        let name = name.trim();
        self.regions_without_community
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name) || r.id.eq_ignore_ascii_case(name))
    }

    /// A peering location by name, case-insensitively.
    pub fn peering_location(&self, name: &str) -> Option<&PeeringLocation> {
        let name = name.trim();
        self.peering_locations
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    /// What a community means: a Microsoft service or a region.
    pub fn community(&self, c: Community) -> Option<CommunityKind<'_>> {
        if let Some(s) = self.service_communities.iter().find(|s| s.community == c) {
            return Some(CommunityKind::Service(s));
        }
        self.regions
            .iter()
            .find(|r| r.community == c)
            .map(CommunityKind::Region)
    }

    /// Regions of a Local circuit at `location` that have a community (the
    /// ones the emulator can route).
    pub fn local_regions<'a>(
        &'a self,
        location: &'a PeeringLocation,
    ) -> impl Iterator<Item = &'a Region> + 'a {
        location.local_regions.iter().filter_map(|n| self.region(n))
    }

    /// Why a circuit of `tier` cannot be ordered at `location`, if it
    /// cannot: ExpressRoute Local needs a location with local regions.
    pub fn tier_unavailable(&self, location: &PeeringLocation, tier: SkuTier) -> Option<String> {
        if tier != SkuTier::Local || location.offers_local() {
            return None;
        }
        let alternatives: Vec<&str> = self
            .peering_locations
            .iter()
            .filter(|l| l.area == location.area && l.cloud == location.cloud && l.offers_local())
            .map(|l| l.name.as_str())
            .collect();
        let elsewhere = if alternatives.is_empty() {
            format!("no peering location in {} offers Local", location.area)
        } else {
            format!(
                "peering locations in {} that offer Local: {}",
                location.area,
                alternatives.join(", ")
            )
        };
        Some(format!(
            "ExpressRoute Local is not offered at {} (Microsoft lists no local Azure region there); use sku.tier Standard or Premium, or move the circuit ({elsewhere})",
            location.name
        ))
    }

    /// Regions of a geopolitical area.
    pub fn regions_in_area<'a>(&'a self, area: &'a str) -> impl Iterator<Item = &'a Region> + 'a {
        self.regions.iter().filter(move |r| r.area == area)
    }

    /// Names of all peering locations, for error messages.
    pub fn peering_location_names(&self) -> Vec<&str> {
        self.peering_locations
            .iter()
            .map(|l| l.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_consistent() {
        let c = Catalog::from_toml(EMBEDDED_CATALOG).unwrap();
        assert!(c.peering_locations.iter().any(|l| l.national));
        for area in [
            "North America",
            "Europe",
            "Asia",
            "Japan",
            "Oceania",
            "India",
        ] {
            assert!(c.peering_locations.iter().any(|l| l.area == area), "{area}");
        }
        assert_eq!(c.service_communities.len(), 6);
    }

    #[test]
    fn region_ids_are_display_names_lowercased_without_spaces() {
        assert_eq!(region_id("West US 2"), "westus2");
        assert_eq!(region_id("US DoD East"), "usdodeast");
        assert_eq!(region_id("Australia Central 2"), "australiacentral2");
    }

    #[test]
    fn lookups() {
        let c = Catalog::embedded();
        assert_eq!(c.region("westeurope").unwrap().name, "West Europe");
        assert_eq!(
            c.region("West Europe").unwrap().community,
            Community::new(12076, 51002)
        );
        assert_eq!(
            c.region("north europe").unwrap().community,
            Community::new(12076, 51003)
        );
        assert_eq!(c.peering_location("amsterdam").unwrap().area, "Europe");
        let dc = c.peering_location("Washington DC").unwrap();
        let local: Vec<_> = c.local_regions(dc).map(|r| r.name.as_str()).collect();
        assert_eq!(local, ["East US", "East US 2"]);
        assert!(matches!(
            c.community(Community::new(12076, 5010)),
            Some(CommunityKind::Service(s)) if s.name == "Exchange Online"
        ));
        assert!(matches!(
            c.community(Community::new(12076, 51004)),
            Some(CommunityKind::Region(r)) if r.name == "East US"
        ));
        assert!(c.community(Community::new(12076, 1)).is_none());
    }

    #[test]
    fn documented_community_values() {
        let c = Catalog::embedded();
        for (region, value) in [
            ("West Europe", 51002),
            ("North Europe", 51003),
            ("East US", 51004),
            ("West US", 51006),
        ] {
            assert_eq!(
                c.region(region).unwrap().community,
                Community::new(12076, value),
                "{region}"
            );
        }
        let services: Vec<u16> = c
            .service_communities
            .iter()
            .map(|s| s.community.value)
            .collect();
        assert_eq!(services, [5010, 5020, 5030, 5040, 5050, 5100]);
        for l in [
            "Dublin",
            "Silicon Valley",
            "London",
            "Tokyo",
            "Singapore",
            "Sydney",
            "Frankfurt",
        ] {
            assert_eq!(c.peering_location(l).unwrap().local_regions.len(), 1, "{l}");
        }
    }

    #[test]
    fn inconsistent_catalog_is_refused() {
        let text = r#"
regions = [{ id = "westeurope", name = "West Europe", area = "Europe", community = "12076:51002" }]
serviceCommunities = []
[[peeringLocations]]
name = "Amsterdam"
metro = "Amsterdam"
area = "Europe"
localRegions = ["East US"]
"#;
        let err = Catalog::from_toml(text).unwrap_err();
        assert!(
            err.to_string().contains("unknown local region East US"),
            "{err}"
        );
    }

    /// A minimal catalog with one region, one location and `extra` TOML.
    fn one_location(region: &str, location: &str) -> Result<Catalog, CatalogError> {
        Catalog::from_toml(&format!(
            "serviceCommunities = []\nregions = [{region}]\npeeringLocations = [{location}]\n"
        ))
    }

    #[test]
    fn a_location_without_local_regions_is_accepted() {
        let c = one_location(
            r#"{ id = "westeurope", name = "West Europe", area = "Europe", community = "12076:51002" }"#,
            r#"{ name = "Brussels", metro = "Brussels", area = "Europe", localRegions = [] }"#,
        )
        .unwrap();
        assert!(!c.peering_location("Brussels").unwrap().offers_local());
    }

    #[test]
    fn inconsistent_regions_and_locations_are_refused() {
        let weu = r#"{ id = "westeurope", name = "West Europe", area = "Europe", community = "12076:51002" }"#;
        let ams = r#"{ name = "Amsterdam", metro = "Amsterdam", area = "Europe", localRegions = ["West Europe"] }"#;
        for (region, location, needle) in [
            (
                r#"{ id = "west-europe", name = "West Europe", area = "Europe", community = "12076:51002" }"#,
                ams,
                r#"id "west-europe" is not "westeurope""#,
            ),
            (
                weu,
                r#"{ name = "Amsterdam", metro = "Amsterdam", area = "Asia", localRegions = ["West Europe"] }"#,
                "no region of the AzureCloud lies in area Asia",
            ),
            (
                weu,
                r#"{ name = "Amsterdam", metro = "Amsterdam", area = "Europe", localRegions = ["West Europe"], national = true, cloud = "AzureUSGovernment" }"#,
                "no region of the AzureUSGovernment lies in area Europe",
            ),
            (
                weu,
                r#"{ name = "Amsterdam", metro = "Amsterdam", area = "Europe", localRegions = ["West Europe"], national = true }"#,
                "national = true but cloud = AzureCloud",
            ),
            (
                r#"{ id = "westeurope", name = "West Europe", area = "Europe", privatePeeringCommunity = "12076:50002" }"#,
                ams,
                "privatePeeringCommunity without community",
            ),
            (
                r#"{ id = "westeurope", name = "West Europe", area = "Europe", community = "12076:51002", privatePeeringCommunity = "12076:51002" }"#,
                ams,
                "West Europe and West Europe share community 12076:51002",
            ),
            (
                weu,
                r#"{ name = "Amsterdam", metro = "Amsterdam", area = "Europe", localRegions = ["West Europe", "west europe"] }"#,
                "local region West Europe is listed twice",
            ),
        ] {
            let err = one_location(region, location).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn a_local_region_without_community_is_known_but_not_routable() {
        let c = one_location(
            r#"{ id = "westeurope", name = "West Europe", area = "Europe", community = "12076:51002" },
               { id = "swedencentral", name = "Sweden Central", area = "Europe" }"#,
            r#"{ name = "Stockholm", metro = "Stockholm", area = "Europe", localRegions = ["Sweden Central"] }"#,
        )
        .unwrap();
        assert!(c.region("Sweden Central").is_none());
        assert_eq!(
            c.region_without_community("swedencentral").unwrap().area,
            "Europe"
        );
        let stockholm = c.peering_location("Stockholm").unwrap();
        assert!(stockholm.offers_local());
        assert_eq!(c.local_regions(stockholm).count(), 0);
    }
}
